-- phone_spec.lua — the one phone rule (src/phone.c) as every door of the module applies it: the
-- strict form of request_pin / verify_pin (client and module level), smsend.normalize_recipient
-- (the same rule after separators), the cooldown's key (the normalised "+..." form), and the
-- allowed_countries list. Checked against the sandbox: a refused number never reaches the wire.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"

local UK, TOK = "SBXUSER", "SBXTOKEN"

-- Numbers the strict rule refuses, with why; each is refused by normalize_recipient too.
local REFUSED = {
  { "+0123456789", "country code starting with 0" },
  { "000123456789", "00 then a country code starting with 0" },
  { "+00393471234567", "a doubled prefix" },
  { "+12345", "5 digits" },
  { "+1234567890123456", "16 digits" },
  { "393471234567", "no international prefix" },
  { "+39 347 1234567", "separators (normalize_recipient strips them, request_pin does not)" },
  { "++393471234567", "two '+'" },
  { "+39347123456a", "a letter" },
}

-- Numbers the strict rule accepts, with their canonical form.
local ACCEPTED = {
  { "+393471234567", "+393471234567" },
  { "00393471234567", "+393471234567" },
  { "+123456", "+123456" },
  { "+123456789012345", "+123456789012345" },
  { "+390612345678", "+390612345678" }, -- a 0 after the country code is part of the number
}

describe("the phone rule", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })

  -- The sandbox's credentials, with the request fields or options of extra.
  local function opts(extra)
    extra = extra or {}
    extra.user_key, extra.access_token, extra.base_url = UK, TOK, sb.base_url
    return extra
  end

  local function refused(st, what)
    assert.equal("invalid_request", st.error, what)
    assert.equal("recipient", st.field, what)
    assert.is_false(st.retryable, what)
    assert.is_nil(st.status, what)
  end

  it("refuses the same numbers in request_pin, verify_pin and normalize_recipient, sending nothing", function()
    local c = assert(smsend.new(opts()))
    for _, case in ipairs(REFUSED) do
      local n, why = case[1], case[2]
      refused(c:request_pin{ recipient = n }, "request_pin " .. n .. " (" .. why .. ")")
      refused(c:verify_pin{ recipient = n, pin = "123456" }, "verify_pin " .. n)
      local t = opts{ recipient = n }
      refused(smsend.request_pin(t), "module request_pin " .. n)
      t.pin = "123456"
      refused(smsend.verify_pin(t), "module verify_pin " .. n)
      if not n:find(" ", 1, true) then
        local norm, msg = smsend.normalize_recipient(n)
        assert.is_nil(norm, "normalize_recipient accepts " .. n)
        assert.is_string(msg)
      end
    end
    assert.equal(0, #sb:requests())
    c:close()
  end)

  it("names the country code when that is what is wrong", function()
    local c = assert(smsend.new(opts()))
    local st = c:request_pin{ recipient = "+0123456789" }
    assert.truthy(st.message:find("country code", 1, true), st.message)
    local _, msg = smsend.normalize_recipient("+0123456789")
    assert.truthy(msg:find("country code", 1, true), msg)
    c:close()
  end)

  it("accepts the strict forms, sends them as given, and normalize_recipient agrees", function()
    local c = assert(smsend.new(opts()))
    for i, case in ipairs(ACCEPTED) do
      local st = c:request_pin{ recipient = case[1] }
      assert.is_true(st.ok, case[1] .. ": " .. tostring(st.message))
      assert.equal(case[2], smsend.normalize_recipient(case[1]))
      assert.equal(case[2], smsend.normalize_recipient(smsend.normalize_recipient(case[1])))
      local body = sb:requests()[i].body
      assert.truthy(body:find('"recipient":"' .. case[1] .. '"', 1, true), body)
    end
    c:close()
  end)

  it("normalize_recipient's result is always accepted by request_pin", function()
    local c = assert(smsend.new(opts()))
    for _, n in ipairs{ "+39 347 123-4567", "0039 (347) 123.4567", "+44 (0)20 7946 0958", "\t+1 (415) 555-2671 " } do
      local norm = assert(smsend.normalize_recipient(n))
      assert.is_true(c:request_pin{ recipient = norm }.ok, n)
    end
    c:close()
  end)

  it("keys the cooldown by the normalised number: +39..., 0039... are one recipient", function()
    -- numbers of this spec's own: claims are process-wide and outlive the client
    local c = assert(smsend.new(opts{ min_interval = 30 }))
    assert.is_true(c:request_pin{ recipient = "00393470006101" }.ok)
    local st = c:request_pin{ recipient = "+393470006101" }
    assert.equal("cooldown", st.error)
    assert.equal("cooldown", c:request_pin{ recipient = "00393470006101" }.error)
    assert.is_true(c:request_pin{ recipient = "+393470006102" }.ok)
    assert.equal(2, #sb:requests())
    c:close()
  end)

  it("parses allowed_countries into the client, refusing malformed lists", function()
    assert.is_truthy(smsend.new(opts{ allowed_countries = "39,44,1" }))
    assert.is_truthy(smsend.new(opts{ allowed_countries = " 39 , 44 " }))
    for _, bad in ipairs{ "", ",", "39,", "039", "1234", "+39", "39;44", "3 9", "x" } do
      local c, err = smsend.new(opts{ allowed_countries = bad })
      assert.is_nil(c, bad)
      assert.truthy(err:find("allowed_countries", 1, true), err)
    end
    local internal = smsend._internal
    local c = assert(smsend.new(opts{ allowed_countries = "39,44" }))
    assert.is_true(internal.holds(c, "allowed_countries", "39,44"))
    c:close()
  end)
end)
