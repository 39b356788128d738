-- session_spec.lua — username/password sessions belong to the process: clients with the same
-- base URL, credentials and auth mode share one login and one renewal; other credentials never
-- share keys. Counted on the sandbox gateway's side.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local USER, PASS = helpers.DEFAULT_USER.username, helpers.DEFAULT_USER.password

describe("process-wide sessions", function()
  local sb = helpers.sandbox_fixture({}, { reset_each = true })
  local serial = 0
  local function number()
    serial = serial + 1
    return string.format("+39347%07d", serial)
  end

  before_each(function()
    collectgarbage() -- clients of earlier tests let go of their sessions
    collectgarbage()
  end)

  local function client(extra)
    local o = { username = USER, password = PASS, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(smsend.new(o))
  end

  local function count(path) return #sb:requests(path) end

  local function paths() return sb:paths() end

  it("lets a second client use the first one's login", function()
    local a, b = client(), client{ user_agent = "another" }
    assert.is_true(a:request_pin{ recipient = number() }.ok)
    assert.is_true(b:request_pin{ recipient = number() }.ok)
    assert.equal("login 2fa/request 2fa/request", paths())
  end)

  it("makes one login for ten pollable calls over two clients", function()
    local a, b = client(), client()
    local ops = {}
    for i = 1, 10 do ops[i] = (i % 2 == 0 and a or b):request_pin_async{ recipient = number() } end
    for i = 1, 10 do
      local st = ops[i]:wait(5)
      assert.is_true(st and st.ok, st and st.message)
    end
    assert.equal(1, count("login"))
    assert.equal(10, count("2fa/request"))
  end)

  it("renews once for the whole process after the gateway expires the session", function()
    local a, b = client(), client()
    assert.is_true(a:request_pin{ recipient = number() }.ok)
    assert.is_true(b:request_pin{ recipient = number() }.ok)
    sb:expire_sessions()
    assert.is_true(a:request_pin{ recipient = number() }.ok) -- 401, the one renewal, the call again
    assert.is_true(b:request_pin{ recipient = number() }.ok) -- takes the renewed keys: no 401
    assert.equal("login 2fa/request 2fa/request 2fa/request login 2fa/request 2fa/request", paths())
  end)

  it("never shares keys between different credentials", function()
    local good = client()
    assert.is_true(good:request_pin{ recipient = number() }.ok)
    local bad = client{ password = PASS .. "-wrong" }
    local st = bad:request_pin{ recipient = number() }
    assert.equal("login_failed", st.error)
    assert.is_nil(st.body)
    -- nor with the same credentials in the other auth mode
    local token = client{ auth = "token" }
    assert.is_true(token:request_pin{ recipient = number() }.ok)
    assert.equal("login 2fa/request login token 2fa/request", paths())
  end)

  it("shares a failed login's outcome with the clients that waited for it", function()
    local a, b = client{ password = "nope" }, client{ password = "nope" }
    local oa = a:request_pin_async{ recipient = number() }
    local ob = b:request_pin_async{ recipient = number() }
    local sa, sb_ = oa:wait(5), ob:wait(5)
    assert.equal("login_failed", sa.error)
    assert.equal("login_failed", sb_.error)
    assert.equal(1, count("login"))
  end)

  it("keeps keys given to smsend.new to their own client", function()
    local key, session_key = helpers.login(sb.base_url, USER, PASS)
    local given = assert(smsend.new{ user_key = key, session_key = session_key, base_url = sb.base_url })
    assert.is_true(given:request_pin{ recipient = number() }.ok)
    local c = client()
    assert.is_true(c:request_pin{ recipient = number() }.ok)
    assert.equal("login 2fa/request login 2fa/request", paths())
  end)

  it("is shared by the Lua states of one process", function()
    -- two child interpreters are two processes: each logs in once
    local code = [[
      local smsend = require "smsend"
      local a = assert(smsend.new{ username = os.getenv("U"), password = os.getenv("P"), base_url = os.getenv("B") })
      local b = assert(smsend.new{ username = os.getenv("U"), password = os.getenv("P"), base_url = os.getenv("B") })
      print(a:request_pin{ recipient = "+393470000101" }.ok, b:request_pin{ recipient = "+393470000102" }.ok)
    ]]
    local env = { U = USER, P = PASS, B = sb.base_url }
    assert.equal("true\ttrue", util.run_lua(code, env))
    assert.equal("true\ttrue", util.run_lua(code, env))
    assert.equal(2, count("login"))
  end)
end)
