-- faults_extra_spec.lua — faults that spec/client_spec.lua does not cover: a connect timeout (a
-- loopback listener whose accept queue is full, so SYNs are dropped), an answer dripping past the
-- timeout, and a wrong Content-Length; for verify_pin, login and check_session as well as
-- request_pin, and with what each means for `retryable` (true only when nothing went out).
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local socket = require "socket"
local helpers = require "spec.support.helpers"
local full_backlog_port = require("spec.support.util").full_backlog_port

local UK, TOK = "SBXUSER", "SBXTOKEN"
local RCPT = "+393471234567"

describe("more faults", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })

  local function new(opts)
    local t = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(opts or {}) do t[k] = v end
    if t.username then t.user_key, t.access_token = nil, nil end
    return assert(smsend.new(t))
  end

  local function expect(st, code, retryable, what, status)
    assert.is_false(st.ok, what)
    assert.equal(code, st.error, (what or "") .. ": " .. tostring(st.message))
    assert.equal(retryable, st.retryable, what)
    assert.equal(status, st.status, what)
    assert.is_string(st.message, what)
    assert.is_number(st.elapsed, what)
  end

  local function recorded(path)
    local n = 0
    for _, r in ipairs(sb:requests()) do
      if not path or r.path == path then n = n + 1 end
    end
    return n
  end

  describe("connect timeout", function()
    local port, close_listener

    before_each(function()
      port, close_listener = full_backlog_port()
    end)

    after_each(function()
      close_listener()
    end)

    it("really is a timeout, not a refusal (the test's own premise)", function()
      local probe = assert(socket.tcp())
      probe:settimeout(0.3)
      local t0 = socket.gettime()
      local ok, err = probe:connect("127.0.0.1", port)
      local took = socket.gettime() - t0
      probe:close()
      assert.is_nil(ok)
      assert.equal("timeout", err)
      assert.is_true(took >= 0.25, tostring(took))
    end)

    it("gives timeout, retryable, after connect_timeout, for every call", function()
      local url = "http://127.0.0.1:" .. port .. "/API/v1.0/REST/"
      local c = new{ base_url = url, connect_timeout = 0.5, timeout = 10 }
      local calls = {
        request_pin = function() return c:request_pin{ recipient = RCPT } end,
        verify_pin = function() return c:verify_pin{ recipient = RCPT, pin = "123456" } end,
        check_session = function() return c:check_session() end,
        module = function()
          return smsend.request_pin{ user_key = UK, access_token = TOK, base_url = url, connect_timeout = 0.5,
                                     recipient = RCPT }
        end,
      }
      for name, call in pairs(calls) do
        local st = call()
        expect(st, "timeout", true, name)
        assert.matches("before the request was sent", st.message)
        assert.is_true(st.elapsed >= 0.45 and st.elapsed < 3, name .. ": " .. st.elapsed)
      end
    end)

    it("applies to the login too, and the PIN request stays retryable", function()
      local url = "http://127.0.0.1:" .. port .. "/API/v1.0/REST/"
      local c = new{ username = "sandbox", password = "sandbox-pass", base_url = url, connect_timeout = 0.5 }
      local st = c:login()
      expect(st, "timeout", true, "login")
      st = c:request_pin{ recipient = RCPT }
      expect(st, "timeout", true, "request_pin with a lazy login")
      assert.is_true(st.elapsed < 3)
    end)
  end)

  describe("an answer dripping past the timeout", function()
    it("is a timeout, not retryable, and the request is never resent", function()
      local c = new{ base_url = sb.url_for("drip"), timeout = 1 }
      local st = c:request_pin{ recipient = RCPT }
      expect(st, "timeout", false, "request_pin")
      assert.matches("may have acted", st.message)
      assert.is_true(st.elapsed >= 0.9 and st.elapsed < 3, tostring(st.elapsed))
      st = c:verify_pin{ recipient = RCPT, pin = "123456" }
      expect(st, "timeout", false, "verify_pin")
      assert.equal(1, recorded("2fa/request"))
      assert.equal(1, recorded("2fa/verify"))
    end)

    it("during a lazy login leaves the PIN request retryable: it never went out", function()
      local c = new{ username = "sandbox", password = "sandbox-pass", base_url = sb.url_for("drip"), timeout = 1 }
      local st = c:request_pin{ recipient = RCPT }
      expect(st, "timeout", true, "request_pin with a lazy login")
      assert.equal(1, recorded("login"))
      assert.equal(0, recorded("2fa/request"))
    end)
  end)

  describe("a wrong Content-Length", function()
    it("is bad_response for verify_pin and check_session, never resent", function()
      local c = new{ base_url = sb.url_for("badlen") }
      local st = c:verify_pin{ recipient = RCPT, pin = "123456" }
      -- the status line did arrive: it is kept, with the part of the body that came
      expect(st, "bad_response", false, "verify_pin", 200)
      st = c:check_session()
      expect(st, "bad_response", false, "check_session", 200)
      st = c:request_pin{ recipient = RCPT }
      expect(st, "bad_response", false, "request_pin", 200)
      assert.equal(1, recorded("2fa/verify"))
      assert.equal(1, recorded("2fa/request"))
    end)

    it("on the login answer fails the login, and the PIN request stays retryable", function()
      local c = new{ username = "sandbox", password = "sandbox-pass", base_url = sb.url_for("badlen") }
      local st = c:login()
      expect(st, "bad_response", true, "login", 200)
      assert.is_nil(st.body, "a login answer, even a broken one, is never shown")
      st = c:request_pin{ recipient = RCPT }
      expect(st, "bad_response", true, "request_pin with a lazy login", 200)
      assert.is_nil(st.body)
      assert.equal(0, recorded("2fa/request"))
    end)

    it("leaves the client usable", function()
      local bad = new{ base_url = sb.url_for("badlen") }
      local good = new()
      for _ = 1, 3 do
        assert.equal("bad_response", bad:request_pin{ recipient = RCPT }.error)
        assert.is_true(good:request_pin{ recipient = RCPT }.ok)
      end
    end)
  end)
end)
