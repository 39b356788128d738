-- sms_spec.lua — smsend.normalize_recipient and smsend.sms_segments (src/sms.c, src/lsms.c):
-- exact canonical numbers, GSM 03.38 / UCS-2 counts at every boundary, and invalid input.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"

-- Written out here, independently of the C switch, so a typo on either side shows up.
-- GSM 03.38 basic table, rows 0x00..0x7F in code order; 0x1B (ESC) is left out.
local GSM_BASIC = table.concat{
  "@£$¥èéùìòÇ\nØø\rÅå",
  "Δ_ΦΓΛΩΠΨΣΘΞ", "ÆæßÉ",
  " !\"#¤%&'()*+,-./",
  "0123456789:;<=>?",
  "¡ABCDEFGHIJKLMNO",
  "PQRSTUVWXYZÄÖÑÜ§",
  "¿abcdefghijklmno",
  "pqrstuvwxyzäöñüà",
}
-- The extension table: reached through ESC, so each costs two septets.
local GSM_EXT = "\f^{}\\[~]|€"

-- LuaJIT has no utf8 library: the two small pieces the spec needs.
local function chars(s)
  local t = {}
  for ch in s:gmatch("[\1-\127\194-\244][\128-\191]*") do t[#t + 1] = ch end
  return t
end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
                     0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local function seg(encoding, units, segments)
  return { encoding = encoding, units = units, segments = segments }
end

-- nil, message: asserts both and that the message mentions `pattern` (plain text).
local function assert_nil_msg(pattern, v, msg)
  assert.is_nil(v)
  assert.is_string(msg)
  assert.truthy(msg:find(pattern, 1, true), ("message %q does not mention %q"):format(msg, pattern))
end

describe("smsend.normalize_recipient", function()
  local norm = smsend.normalize_recipient

  it("is exported next to the rest of the module", function()
    assert.is_function(smsend.normalize_recipient)
    assert.is_function(smsend.sms_segments)
    assert.is_function(smsend.new)
    assert.is_function(smsend.request_pin)
    assert.is_function(smsend.verify_pin)
    assert.is_string(smsend._VERSION)
  end)

  it("strips spaces, dashes, dots and parentheses after a '+'", function()
    assert.equal("+393471234567", norm("+39 347 123-4567"))
    assert.equal("+393471234567", norm("+39-347-123-4567"))
    assert.equal("+393471234567", norm("+39.347.123.4567"))
    assert.equal("+393471234567", norm("+39 (347) 1234567"))
    assert.equal("+14155552671", norm("+1 (415) 555-2671"))
  end)

  it("turns a 00 international prefix into '+'", function()
    assert.equal("+393471234567", norm("0039 (347) 123.4567"))
    assert.equal("+393471234567", norm("00393471234567"))
    assert.equal("+393471234567", norm("00 39 347 1234567"))
    assert.equal("+123456", norm("00123456"))
  end)

  it("leaves a canonical number as it is", function()
    assert.equal("+393471234567", norm("+393471234567"))
    assert.equal("+393471234567", norm(norm("0039 347 1234567")))
  end)

  it("accepts tabs, no-break spaces and separators around the number", function()
    assert.equal("+393471234567", norm("\t+39\t347 1234567 \t"))
    assert.equal("+393471234567", norm("+39\194\160347\194\160123\194\1604567"))
    assert.equal("+393471234567", norm("(+39) 347 1234567"))
    assert.equal("+393471234567", norm("  -+39 347 1234567.  "))
  end)

  it("drops a (0) trunk prefix written after the country code", function()
    assert.equal("+442079460958", norm("+44 (0)20 7946 0958"))
    assert.equal("+442079460958", norm("0044 (0)20 7946 0958"))
    assert.equal("+4930123456", norm("+49(0)30 123456"))
  end)

  it("keeps a 0 that is part of the national number", function()
    -- Italian landlines keep their 0 internationally.
    assert.equal("+390612345678", norm("+39 06 1234 5678"))
    assert.equal("+390612345678", norm("0039 06 1234 5678"))
  end)

  it("returns exactly 1 value on success", function()
    assert.equal(1, select("#", norm("+393471234567")))
  end)

  it("needs an international prefix", function()
    assert_nil_msg("international prefix", norm("347 123 4567"))
    assert_nil_msg("international prefix", norm("3471234567"))
    assert_nil_msg("international prefix", norm("0347 1234567"))
    assert_nil_msg("international prefix", norm("(0)20 7946 0958"))
  end)

  it("accepts 6 to 15 digits after the prefix, no more, no fewer", function()
    assert_nil_msg("6 to 15 digits", norm("+12345"))
    assert.equal("+123456", norm("+123456"))
    assert.equal("+123456789012345", norm("+123456789012345"))
    assert_nil_msg("6 to 15 digits", norm("+1234567890123456"))
    assert_nil_msg("has 16", norm("+1234567890123456"))
    assert_nil_msg("has 100", norm("+" .. ("1234567890"):rep(10)))
    assert_nil_msg("6 to 15 digits", norm("0012345"))
    assert_nil_msg("has 0", norm("00"))
    assert_nil_msg("6 to 15 digits", norm("00 1234567890123456"))
  end)

  it("always returns '+' followed by 6 to 15 digits", function()
    for _, s in ipairs{ "+39 347 123-4567", "0039 (347) 123.4567", "+123456", "00 1 234 567 890 123 45",
                        "+44 (0)20 7946 0958" } do
      local r = assert(norm(s))
      assert.truthy(r:match("^%+[1-9]%d+$"), r)
      assert.truthy(#r >= 7 and #r <= 16, r)
    end
  end)

  it("refuses a country code starting with 0 (a doubled prefix)", function()
    assert_nil_msg("country code", norm("+0393471234567"))
    assert_nil_msg("country code", norm("000393471234567"))
    assert_nil_msg("country code", norm("+00393471234567"))
    -- (0) only means a trunk prefix once a country code has been written.
    assert_nil_msg("country code", norm("+(0)39 347 1234567"))
    assert_nil_msg("country code", norm("00(0)39 347 1234567"))
  end)

  it("refuses letters and other symbols", function()
    assert_nil_msg("invalid character at byte 9", norm("+39 347 ABC4567"))
    assert_nil_msg("invalid character", norm("+1-800-FLOWERS"))
    assert_nil_msg("invalid character", norm("+39/347/1234567"))
    assert_nil_msg("invalid character", norm("+39 347 1234567#"))
    assert_nil_msg("invalid character", norm("+39_3471234567"))
    assert_nil_msg("invalid character", norm("+39347\0" .. "1234567"))
    assert_nil_msg("invalid character", norm("tel:+393471234567"))
    assert_nil_msg("invalid character", norm("+39\226\128\1473471234567")) -- U+2013 en dash
    assert_nil_msg("invalid character", norm("+39\194"))                    -- cut NBSP
    assert_nil_msg("invalid character", norm("\239\188\1433471234567"))    -- U+FF0B fullwidth plus
  end)

  it("refuses a '+' that is not at the start", function()
    assert_nil_msg("not at the start", norm("39+3471234567"))
    assert_nil_msg("not at the start", norm("0039+3471234567"))
    assert_nil_msg("not at the start", norm("++393471234567"))
    assert_nil_msg("not at the start", norm("+39 347 1234567+"))
  end)

  it("refuses empty input and input without digits", function()
    assert_nil_msg("empty", norm(""))
    assert_nil_msg("no digits", norm("   "))
    assert_nil_msg("no digits", norm("+"))
    assert_nil_msg("no digits", norm("( ) - ."))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() norm(393471234567) end)
    assert.has_error(function() norm(nil) end)
    assert.has_error(function() norm() end)
    assert.has_error(function() norm({}) end)
    assert.has_error(function() norm(true) end)
    local ok, err = pcall(norm, 393471234567)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("string expected", 1, true), err)
  end)
end)

describe("smsend.sms_segments", function()
  local count = smsend.sms_segments

  it("counts an empty text as 0 units in 0 segments", function()
    assert.same(seg("GSM-7", 0, 0), count(""))
  end)

  it("returns a table with exactly encoding, units and segments", function()
    local t = count("Hello")
    assert.same(seg("GSM-7", 5, 1), t)
    if math.type then -- Lua 5.3+: counts are integers, not floats
      assert.equal("integer", math.type(t.units))
      assert.equal("integer", math.type(t.segments))
    end
  end)

  it("puts 160 GSM characters in one SMS and 153 in each concatenated part", function()
    assert.same(seg("GSM-7", 1, 1), count("a"))
    assert.same(seg("GSM-7", 160, 1), count(("a"):rep(160)))
    assert.same(seg("GSM-7", 161, 2), count(("a"):rep(161)))
    assert.same(seg("GSM-7", 306, 2), count(("a"):rep(306)))
    assert.same(seg("GSM-7", 307, 3), count(("a"):rep(307)))
    assert.same(seg("GSM-7", 459, 3), count(("a"):rep(459)))
    assert.same(seg("GSM-7", 460, 4), count(("a"):rep(460)))
  end)

  it("knows every character of the GSM 03.38 basic table", function()
    local basic = chars(GSM_BASIC)
    assert.equal(127, #basic)
    assert.same(seg("GSM-7", 127, 1), count(GSM_BASIC))
    for _, ch in ipairs(basic) do
      assert.same(seg("GSM-7", 1, 1), count(ch), ("%q"):format(ch))
    end
  end)

  it("counts each extension character (^ { } \\ [ ~ ] | € and form feed) twice", function()
    local ext = chars(GSM_EXT)
    assert.equal(10, #ext)
    for _, ch in ipairs(ext) do
      assert.same(seg("GSM-7", 2, 1), count(ch), ("%q"):format(ch))
    end
    assert.same(seg("GSM-7", 20, 1), count(GSM_EXT))
    assert.same(seg("GSM-7", 10, 1), count("[1] 5 €"))
  end)

  it("classifies every code point up to U+07FF and U+2000..U+20FF exactly by the tables", function()
    local class = {}
    for _, ch in ipairs(chars(GSM_BASIC)) do class[ch] = 1 end
    for _, ch in ipairs(chars(GSM_EXT)) do class[ch] = 2 end
    local function check(cp)
      local ch = utf8_char(cp)
      local want = class[ch] and seg("GSM-7", class[ch], 1) or seg("UCS-2", 1, 1)
      assert.same(want, count(ch), ("U+%04X"):format(cp))
    end
    for cp = 0, 0x7FF do check(cp) end
    for cp = 0x2000, 0x20FF do check(cp) end
  end)

  it("is strict: look-alikes outside the table force UCS-2", function()
    for _, ch in ipairs{ "`", "\t", "\v", "ç", "á", "Α", "Ά", "ł", "“", "’", "—", "…", "\194\160", "©" } do
      assert.same(seg("UCS-2", 1, 1), count(ch), ("%q"):format(ch))
    end
    assert.same(seg("UCS-2", 3, 1), count("a\0b"))
  end)

  it("adds extension characters at the 160 / 153 limits as two units", function()
    assert.same(seg("GSM-7", 160, 1), count(("a"):rep(158) .. "€"))
    assert.same(seg("GSM-7", 161, 2), count(("a"):rep(159) .. "€"))
    assert.same(seg("GSM-7", 160, 1), count(("€"):rep(80)))
    assert.same(seg("GSM-7", 162, 2), count(("€"):rep(81)))
    -- 76 euro signs fill a part (152 septets): the 77th cannot take the 153rd alone.
    assert.same(seg("GSM-7", 306, 3), count(("€"):rep(153)))
  end)

  it("never splits an extension character across two parts", function()
    -- 152 + ESC€ would straddle the 153-septet boundary, so € opens part two.
    assert.same(seg("GSM-7", 306, 3), count(("a"):rep(152) .. "€" .. ("a"):rep(152)))
    assert.same(seg("GSM-7", 305, 2), count(("a"):rep(152) .. "€" .. ("a"):rep(151)))
    assert.same(seg("GSM-7", 306, 2), count(("a"):rep(151) .. "€" .. ("a"):rep(153)))
  end)

  it("switches the whole text to UCS-2 for one character outside GSM 03.38", function()
    assert.same(seg("UCS-2", 5, 1), count("ciaoç"))
    assert.same(seg("UCS-2", 201, 3), count(("a"):rep(200) .. "ç"))
    -- In UCS-2 the GSM extension characters are ordinary single units.
    assert.same(seg("UCS-2", 3, 1), count("€{ж"))
  end)

  it("puts 70 UCS-2 units in one SMS and 67 in each concatenated part", function()
    assert.same(seg("UCS-2", 70, 1), count(("ж"):rep(70)))
    assert.same(seg("UCS-2", 71, 2), count(("ж"):rep(71)))
    assert.same(seg("UCS-2", 134, 2), count(("ж"):rep(134)))
    assert.same(seg("UCS-2", 135, 3), count(("ж"):rep(135)))
    assert.same(seg("UCS-2", 201, 3), count(("ж"):rep(201)))
    assert.same(seg("UCS-2", 202, 4), count(("ж"):rep(202)))
  end)

  it("counts characters past U+FFFF as two UTF-16 units", function()
    assert.same(seg("UCS-2", 2, 1), count("😀"))
    assert.same(seg("UCS-2", 2, 1), count(utf8_char(0x10FFFF)))
    assert.same(seg("UCS-2", 7, 1), count("Ciao 😀"))
    assert.same(seg("UCS-2", 70, 1), count(("😀"):rep(35)))
    -- 33 emoji (66 units) per part: the 34th would split its surrogate pair.
    assert.same(seg("UCS-2", 72, 2), count(("😀"):rep(36)))
    assert.same(seg("UCS-2", 134, 3), count(("😀"):rep(67)))
    assert.same(seg("UCS-2", 134, 3), count(("ж"):rep(66) .. "😀" .. ("ж"):rep(66)))
  end)

  it("returns nil, message for invalid UTF-8", function()
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\255"))
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\128"))              -- lone continuation
    assert_nil_msg("not valid UTF-8 (byte 4)", count("abc\195"))           -- cut short
    assert_nil_msg("not valid UTF-8 (byte 3)", count("ab\195(x"))          -- bad continuation
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\192\128"))          -- overlong NUL
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\224\128\175"))      -- overlong '/'
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\237\160\128"))      -- U+D800 surrogate
    assert_nil_msg("not valid UTF-8 (byte 1)", count("\244\144\128\128"))  -- past U+10FFFF
    assert_nil_msg("not valid UTF-8 (byte 161)", count(("a"):rep(160) .. "\248\136\128\128\128"))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() count(42) end)
    assert.has_error(function() count(nil) end)
    assert.has_error(function() count() end)
    assert.has_error(function() count({ "text" }) end)
    local ok, err = pcall(count, 42)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("string expected", 1, true), err)
  end)
end)

describe("types/smsend.lua", function()
  local function read_types()
    local dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec") .. "/../types/smsend.lua"
    local f = assert(io.open(dir, "rb"))
    local s = f:read("*a")
    f:close()
    return s
  end

  -- Keeps the editor types and the module in step: every function one has, the other has.
  it("documents exactly the module's functions and the client's methods", function()
    local src = read_types()
    assert.truthy(src:find("^%-%-%-@meta smsend\n"))
    local documented, methods = {}, {}
    for name in src:gmatch("\nfunction smsend%.([%w_]+)") do documented[name] = true end
    for name in src:gmatch("\nfunction client:([%w_]+)") do methods[name] = true end
    for k, v in pairs(smsend) do
      if type(v) == "function" then assert.is_true(documented[k], "undocumented smsend." .. k) end
    end
    for k in pairs(documented) do assert.is_function(smsend[k], "smsend." .. k .. " does not exist") end
    local c = assert(smsend.new{ user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/" })
    local index = getmetatable(c).__index
    for k in pairs(index) do assert.is_true(methods[k], "undocumented client:" .. k) end
    for k in pairs(methods) do assert.is_function(index[k], "client:" .. k .. " does not exist") end
    c:close()
  end)

  it("lists every error code the module can return", function()
    local src = read_types()
    for _, code in ipairs{ "invalid_request", "bad_request", "unauthorized", "not_found", "rate_limited",
                           "server_error", "unexpected_status", "bad_response", "timeout", "connect_failed",
                           "resolve_failed", "tls_failed", "network_error", "wrong_pin", "login_failed",
                           "cooldown", "out_of_memory" } do
      assert.truthy(src:find('\n---| "' .. code .. '"', 1, true), code)
    end
  end)
end)
