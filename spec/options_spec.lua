-- options_spec.lua — the option list of src/options.def and the error list of src/errors.def, as the
-- module reports them through smsend._internal: every option survives the trip into the client and
-- takes part in the module-level cache's comparison, the environment fallback works as listed, and
-- types/smsend.lua names exactly what the lists hold (readme_spec holds docs/ to types/smsend.lua);
-- the docs' tables also give each listed variable and each code's retryable default.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local util = require "spec.support.util"

local internal = smsend._internal
local OPTIONS, ERRORS = internal.options(), internal.errors()

-- Nothing here talks to a gateway: clients are only built, never called.
local HTTP_BASE = "http://127.0.0.1:9/"
local HTTPS_BASE = "https://127.0.0.1:9/"

-- Two valid values per option, and what else the option needs to make a valid configuration.
-- A new option without samples here fails the first test: the list and this spec move together.
local SAMPLES = {
  user_key = { "UK-one", "UK-two", { access_token = "T" } },
  access_token = { "TOKEN-one", "TOKEN-two", { user_key = "U" } },
  session_key = { "SESSION-one", "SESSION-two", { user_key = "U" } },
  username = { "user one", "user two", { password = "p" } },
  password = { "pass one", "pass two", { username = "u" } },
  base_url = { "http://127.0.0.1:9/one/", "http://localhost:9/two" },
  auth = { "token", "session" },
  login_path = { "auth/login", "login2" },
  token_path = { "auth/token", "token2" },
  timeout = { 3.5, 4 },
  connect_timeout = { 1.25, 2 },
  cainfo = { "/etc/ssl/certs/ca-certificates.crt", "/nonexistent/ca.pem" },
  capath = { "/etc/ssl/certs", "/nonexistent/certs" },
  proxy = { "http://127.0.0.1:3128", "socks5h://user:pw@127.0.0.1:1080", { base_url = HTTPS_BASE } },
  user_agent = { "app/1.0", "app/2.0" },
  min_interval = { 30, 30.5 },
  guard = { "redis://127.0.0.1:6379", "redis://:pass@127.0.0.1:6380/2" },
  guard_fail = { "open", "closed" },
  guard_key = { ("k"):rep(16), ("k"):rep(15) .. "K" },
  pins_per_window = { 5, 6 },
  window = { 60, 61.5 },
  allowed_countries = { "39,44,1", "39, 44" },
}

local function config(name, value)
  local t = { user_key = "U", access_token = "T", base_url = HTTP_BASE }
  local needs = SAMPLES[name][3] or {}
  if needs.username or needs.password or needs.user_key then t.user_key, t.access_token = nil, nil end
  for k, v in pairs(needs) do t[k] = v end
  t[name] = value
  return t
end

local function names(list)
  local t = {}
  for _, o in ipairs(list) do t[o.name] = true end
  return t
end

local function by_name(list)
  local t = {}
  for _, o in ipairs(list) do t[o.name] = o end
  return t
end

describe("smsend._internal.options", function()
  it("lists every option once, each with a kind, and samples in this spec", function()
    assert.is_true(#OPTIONS >= 22)
    local seen = {}
    for _, o in ipairs(OPTIONS) do
      assert.is_nil(seen[o.name], "listed twice: " .. o.name)
      seen[o.name] = true
      assert.truthy(({ string = 1, secret = 1, credential = 1, seconds = 1, integer = 1, enum = 1 })[o.kind], o.name)
      assert.is_table(SAMPLES[o.name], "no samples for option " .. o.name)
    end
    for name in pairs(SAMPLES) do assert.is_true(seen[name], "sampled but not an option: " .. name) end
    local o = by_name(OPTIONS)
    assert.same({ "session", "token" }, o.auth.words)
    assert.same({ "closed", "open" }, o.guard_fail.words)
    assert.equal("SMSEND_CAINFO", o.cainfo.env)
    assert.equal("SMSEND_GUARD_KEY", o.guard_key.env)
    assert.equal("process", o.guard.default)
    assert.equal(600, o.window.default)
    assert.equal("secret", o.guard.kind)
    assert.equal("secret", o.guard_key.kind)
    assert.equal("integer", o.pins_per_window.kind)
  end)

  it("every option survives the trip into the client, and only its own value matches", function()
    for _, o in ipairs(OPTIONS) do
      local a, b = SAMPLES[o.name][1], SAMPLES[o.name][2]
      local c, err = smsend.new(config(o.name, a))
      assert.is_truthy(c, o.name .. ": " .. tostring(err))
      assert.is_true(internal.holds(c, o.name, a), o.name .. " did not arrive")
      assert.is_false(internal.holds(c, o.name, b), o.name .. " matches a value it was not given")
      c:close()
    end
  end)

  it("every option takes part in the module-level cache's comparison", function()
    for _, o in ipairs(OPTIONS) do
      local a, b = SAMPLES[o.name][1], SAMPLES[o.name][2]
      local ca = assert(internal.cached_client(config(o.name, a)))
      local cb = assert(internal.cached_client(config(o.name, b)))
      assert.are_not.equal(ca, cb, "two configurations differing only in " .. o.name .. " share a client")
      -- and the cache does work: the same configuration again finds the same client, still alive
      assert.equal(ca, internal.cached_client(config(o.name, a)), o.name)
      assert.equal(cb, internal.cached_client(config(o.name, b)), o.name)
    end
  end)

  -- The cache's quick way matches a call that gives the same keys with the same values as the
  -- call that made a slot; a call that leaves an option out must take the full way and get the
  -- client of what it finishes to (the default or the environment), not the slot's.
  it("a call that leaves out an option the cached call gave gets a client without it", function()
    for _, o in ipairs(OPTIONS) do
      if not (o.env and os.getenv(o.env)) then
        local a = SAMPLES[o.name][1]
        local with = config(o.name, a)
        local without = config(o.name, nil)
        if o.kind == "credential" then -- leaving out a credential changes the rules: swap in the other
          without = config(o.name, SAMPLES[o.name][2])
        end
        local ca = assert(internal.cached_client(with))
        local cn = assert(internal.cached_client(without))
        local plain = assert(smsend.new(without))
        local same = internal.holds(plain, o.name, a) -- the default (or the other sample) is a itself
        plain:close()
        if same then
          assert.equal(ca, cn, o.name .. ": equal configurations get different clients")
        else
          assert.are_not.equal(ca, cn, o.name .. ": a call without it got the client of a call with it")
        end
        -- and the other order: the slot made without it does not serve a call with it
        assert.equal(ca, internal.cached_client(with), o.name)
        assert.equal(cn, internal.cached_client(without), o.name)
      end
    end
  end)

  it("applies the listed defaults", function()
    local given = { user_key = "U", access_token = "T", base_url = HTTP_BASE }
    local c = assert(smsend.new(given))
    local n = 0
    for _, o in ipairs(OPTIONS) do
      if given[o.name] or (o.env and os.getenv(o.env)) then -- luacheck: ignore 542
        -- given, or possibly from this process's environment
      elseif o.default ~= nil then
        assert.is_true(internal.holds(c, o.name, o.default), o.name)
        n = n + 1
      elseif o.default == nil then
        assert.is_true(internal.holds(c, o.name, nil), o.name .. " is set without being given")
      end
    end
    assert.is_true(n >= 10)
    c:close()
  end)

  it("refuses a wrong type for every option, naming it", function()
    for _, o in ipairs(OPTIONS) do
      local wrong = (o.kind == "seconds" or o.kind == "integer") and "10" or 10
      local c, err = smsend.new(config(o.name, wrong))
      assert.is_nil(c, o.name)
      assert.truthy(err:find(o.name, 1, true), err)
      local t = config(o.name, wrong)
      t.recipient = "+393471234567"
      local st = smsend.request_pin(t)
      assert.equal("invalid_request", st.error)
      assert.equal(o.name, st.field)
    end
  end)

  it("checks the new options", function()
    local function refused(name, value, pattern)
      local c, err = smsend.new(config(name, value))
      assert.is_nil(c, name .. " = " .. tostring(value))
      assert.truthy(err:find(pattern, 1, true), err)
      local t = config(name, value)
      t.recipient = "+393471234567"
      local st = smsend.request_pin(t)
      assert.equal("invalid_request", st.error)
      assert.equal(name, st.field)
      if name == "guard" or name == "guard_key" then -- secrets: never quoted back
        assert.is_nil(err:find(value, 1, true), err)
        assert.is_nil(st.message:find(value, 1, true), st.message)
      end
    end
    refused("guard", "memory", 'guard must be "process" or redis://')
    refused("guard", "redis://127.0.0.1", "guard has no port")
    refused("guard", "redis://user:pass@127.0.0.1:6379", "no user name")
    refused("guard", "redis://:pass@127.0.0.1:6379/x", "database number")
    refused("guard", "redis://127.0.0.1:99999", "malformed port")
    refused("guard_fail", "later", 'guard_fail must be "closed" or "open"')
    refused("guard_key", "short", "at least 16 bytes")
    refused("pins_per_window", -1, "whole number from 0")
    refused("pins_per_window", 2.5, "whole number from 0")
    refused("window", 0, "window must be a number of seconds above 0")
    refused("allowed_countries", "", "calling codes")
    refused("allowed_countries", "39,044", "calling codes")
    refused("allowed_countries", "+39", "calling codes")
    refused("allowed_countries", "39;44", "calling codes")
    refused("allowed_countries", "1234", "calling codes")
    assert.is_truthy(smsend.new(config("pins_per_window", 0)))
    assert.is_truthy(smsend.new(config("guard", "process")))
    assert.is_truthy(smsend.new(config("guard", "redis://[::1]:6379/0")))
  end)
end)

describe("the environment fallback", function()
  -- In a fresh interpreter, so that the variables are really the process's.
  local function run(code, env)
    local out, ok = util.run_lua([[
      local smsend = require "smsend"
      local I = smsend._internal
      local function new(t) local c, err = smsend.new(t); if not c then print("nil", err) end; return c end
    ]] .. code, env)
    assert.is_truthy(ok, out)
    return out
  end

  local function literal(t)
    local parts = {}
    for k, v in pairs(t) do parts[#parts + 1] = ("[%q] = %q"):format(k, v) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end

  it("reads each listed variable when its option is not given, and not when it is", function()
    local n = 0
    for _, o in ipairs(OPTIONS) do
      if o.env then
        local a, b = SAMPLES[o.name][1], SAMPLES[o.name][2]
        local without, env = config(o.name, nil), { [o.env] = a }
        if o.kind == "credential" then
          -- credentials come from the environment as a set: the rest of the set goes there too
          without = { base_url = HTTP_BASE }
          for k, v in pairs(SAMPLES[o.name][3]) do env["SMSEND_" .. k:upper()] = v end
        end
        local out = run(([[
          local c = assert(new(%s))
          io.write(tostring(I.holds(c, %q, %q)))
          c = assert(new(%s))
          io.write(" ", tostring(I.holds(c, %q, %q)))
        ]]):format(literal(without), o.name, a, literal(config(o.name, b)), o.name, b), env)
        assert.equal("true true", out, o.name .. " from " .. o.env)
        n = n + 1
      end
    end
    assert.equal(8, n)
  end)

  it("reads no credential variable once any credential is given", function()
    local out = run([[
      local c = assert(new{ user_key = "GIVEN", session_key = "S", base_url = "http://127.0.0.1:9/" })
      io.write(tostring(I.holds(c, "access_token", nil)), " ", tostring(I.holds(c, "user_key", "GIVEN")))
      io.write(" ", tostring(I.holds(c, "session_key", "S")))
    ]], { SMSEND_USER_KEY = "ENV", SMSEND_ACCESS_TOKEN = "ENVTOKEN" })
    assert.equal("true true true", out)
  end)

  it("takes a variable that is set but empty as a configuration error, not as the default", function()
    local out = run([[
      local c = new{ user_key = "U", access_token = "T" }
      local st = smsend.request_pin{ user_key = "U", access_token = "T", recipient = "+393471234567" }
      io.write(" ", st.error, " ", st.field, " ", tostring(st.message:find("SMSEND_BASE_URL", 1, true) ~= nil))
    ]], { SMSEND_BASE_URL = "" })
    assert.equal("nil\tSMSEND_BASE_URL is set but empty: unset it or give it a value\n invalid_request base_url true", out)
    out = run([[
      local c = new{ user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/" }
      io.write(tostring(c ~= nil))
    ]], { SMSEND_BASE_URL = "", SMSEND_CAINFO = "/etc/ssl/certs/ca-certificates.crt" })
    assert.equal("true", out) -- a given option is not replaced, so its empty variable is never read
    out = run([[
      local c, err = smsend.new{ user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/" }
      io.write(tostring(err))
    ]], { SMSEND_GUARD_KEY = "" })
    assert.equal("SMSEND_GUARD_KEY is set but empty: unset it or give it a value", out)
  end)

  -- The variables are read when a client is made: by smsend.new, and by a module-level call that
  -- makes a cached client; the same call again gets that client, with what it read then.
  it("a cached client keeps the variables it was made with; a new client reads them anew", function()
    if not jit then
      pending("needs LuaJIT's FFI to change this process's environment")
      return
    end
    local out = run([[
      local ffi = require "ffi"
      ffi.cdef "int setenv(const char *name, const char *value, int overwrite);"
      local t = { user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/" }
      local first = assert(I.cached_client(t))
      ffi.C.setenv("SMSEND_CAINFO", "/nonexistent/ca.pem", 1)
      io.write(tostring(I.cached_client(t) == first))
      local c = assert(new(t))
      io.write(" ", tostring(I.holds(c, "cainfo", "/nonexistent/ca.pem")))
      -- other keys (an explicit default): finished anew, so with the variable: another client
      local other = assert(I.cached_client{ user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/",
                                            timeout = 10 })
      io.write(" ", tostring(other ~= first))
      ffi.C.setenv("SMSEND_CAINFO", "", 1) -- set but empty: an error for a call that reads it
      local st = smsend.request_pin{ user_key = "U", access_token = "T", base_url = "http://127.0.0.1:9/",
                                     timeout = 9, recipient = "+393471234567" }
      io.write(" ", st.error, " ", st.field)
    ]])
    assert.equal("true true true invalid_request cainfo", out)
  end)

  it("takes an empty credential variable as unset (no credential is no credential)", function()
    local out = run([[
      local c = assert(new{ base_url = "http://127.0.0.1:9/" })
      io.write(tostring(I.holds(c, "session_key", nil)), " ", tostring(I.holds(c, "access_token", "ENVTOKEN")))
    ]], { SMSEND_USER_KEY = "ENV", SMSEND_ACCESS_TOKEN = "ENVTOKEN", SMSEND_SESSION_KEY = "" })
    assert.equal("true true", out)
  end)
end)

describe("smsend._internal.errors", function()
  it("lists every code once, the old ones and the new ones", function()
    local seen = {}
    for _, e in ipairs(ERRORS) do
      assert.is_nil(seen[e.name], e.name)
      seen[e.name] = e.retryable
      assert.truthy(e.retryable == true or e.retryable == false or e.retryable == "per call", e.name)
    end
    for _, code in ipairs{ "invalid_request", "bad_request", "unauthorized", "not_found", "rate_limited",
                           "server_error", "unexpected_status", "bad_response", "timeout", "connect_failed",
                           "resolve_failed", "tls_failed", "network_error", "wrong_pin", "login_failed",
                           "cooldown", "out_of_memory", "guard_unavailable", "country_not_allowed", "busy",
                           "cancelled" } do
      assert.is_not_nil(seen[code], code)
    end
    assert.is_true(seen.guard_unavailable)
    assert.is_false(seen.country_not_allowed)
    assert.is_true(seen.busy)
    assert.equal("per call", seen.cancelled)
  end)
end)

local read = require("spec.support.helpers").read_file

describe("types/smsend.lua", function()
  local src = assert(read("types/smsend.lua"))

  -- The lines of one ---@class or ---@alias block, up to the next blank line.
  local function block(header)
    local start = assert(src:find(header, 1, true), header)
    local stop = src:find("\n\n", start, true) or #src
    return src:sub(start, stop)
  end

  it("declares exactly the options of the list in smsend.options", function()
    local declared = {}
    for name in block("---@class smsend.options\n"):gmatch("\n%-%-%-@field ([%w_]+)") do declared[name] = true end
    assert.same(names(OPTIONS), declared)
  end)

  it("declares exactly the error codes of the list in smsend.error_code", function()
    local declared = {}
    for code in block("---@alias smsend.error_code\n"):gmatch('\n%-%-%-| "([%w_]+)"') do declared[code] = true end
    assert.same(names(ERRORS), declared)
  end)
end)

describe("the docs' tables", function()
  -- Every markdown table of README.md and docs/*.md whose header's first cell is `first`: the
  -- rows as lists of cells.
  local function tables(first)
    local rows = {}
    local files = { "README.md" }
    local p = io.popen("ls docs/*.md 2>/dev/null")
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    for _, file in ipairs(files) do
      local inside = false
      for line in ((read(file) or "") .. "\n"):gmatch("(.-)\n") do
        if line:match("^|") then
          local cells = {}
          for cell in line:gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = cell end
          if cells[1] == first then
            inside = true
          elseif inside and not line:match("^|%-") then
            rows[#rows + 1] = cells
          end
        else
          inside = false
        end
      end
    end
    return rows
  end

  it("have a row for every environment variable of the list", function()
    local documented = {}
    for _, cells in ipairs(tables("variable")) do
      for name in cells[1]:gmatch("`([%w_]+)`") do documented[name] = true end
    end
    for _, o in ipairs(OPTIONS) do
      if o.env then assert.is_true(documented[o.env], "no docs row for " .. o.env) end
    end
  end)

  it("have a row for every error code, with its retryable default", function()
    local documented = {}
    for _, cells in ipairs(tables("code")) do
      local code = cells[1]:match("^`([%w_]+)`$")
      if code then documented[code] = cells[#cells] end
    end
    for _, e in ipairs(ERRORS) do
      local cell = documented[e.name]
      assert.is_string(cell, "no docs row for error " .. e.name)
      if e.retryable == "per call" then
        assert.truthy(cell:match("^true only") or cell:match("per call"), e.name .. ": " .. cell)
      elseif e.retryable then
        assert.truthy(cell:match("^true") and not cell:match("^true only"), e.name .. ": " .. cell)
      else
        assert.truthy(cell:match("^false"), e.name .. ": " .. cell)
      end
    end
  end)
end)

describe("the guard options", function()
  local helpers = require "spec.support.helpers"
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })

  local function client(extra)
    local t = { user_key = "SBXUSER", access_token = "SBXTOKEN", base_url = sb.base_url }
    for k, v in pairs(extra) do t[k] = v end
    return assert(smsend.new(t))
  end

  -- numbers of this spec's own: the process store's claims outlive a client
  it("pins_per_window and window reach the guard", function()
    local c = client{ pins_per_window = 2, window = 60 }
    assert.is_true(c:request_pin{ recipient = "+393470006301" }.ok)
    assert.is_true(c:request_pin{ recipient = "+393470006301" }.ok)
    local st = c:request_pin{ recipient = "+393470006301" }
    assert.equal("cooldown", st.error)
    assert.is_true(st.retry_after > 0 and st.retry_after <= 60)
    assert.equal(2, #sb:requests())
    c:close()
  end)

  it("guard and guard_fail reach the guard: an unreachable store refuses, or sends when told to", function()
    local store = "redis://127.0.0.1:" .. util.closed_port()
    local closed = client{ min_interval = 30, guard = store, connect_timeout = 1 }
    local st = closed:request_pin{ recipient = "+393470006302" }
    assert.equal("guard_unavailable", st.error)
    assert.is_true(st.retryable)
    assert.equal(0, #sb:requests())
    local open = client{ min_interval = 30, guard = store, guard_fail = "open", connect_timeout = 1 }
    st = open:request_pin{ recipient = "+393470006302" }
    assert.is_true(st.ok, st.message)
    assert.equal(1, #sb:requests())
    closed:close()
    open:close()
  end)
end)
