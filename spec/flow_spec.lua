-- flow_spec.lua — the whole 2FA flow: verify_pin, username/password login with lazy login and one
-- renewal on 401, check_session and the cooldown guard, against the sandbox (bin/smsend: cli_spec.lua).
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local UK, TOK = "SBXUSER", "SBXTOKEN"
local USER, PASS = "sandbox", "sandbox-pass"
local RCPT = "+393471234567"
local ODD_USER, ODD_PASS = "ünïcode user", "p@ss w&rd=%+/?#ü€~._-"

describe("the 2FA flow", function()
  local sb = helpers.sandbox_fixture({ users = {
      { username = USER, password = PASS, user_key = UK, access_token = TOK },
      { username = ODD_USER, password = ODD_PASS, user_key = "ODDUSER", access_token = "ODDTOKEN" },
    } }, { reset_each = true })

  local function paths() return sb:paths() end

  local function token_client(extra)
    local opts = { user_key = UK, access_token = TOK, base_url = sb.base_url }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(smsend.new(opts))
  end

  local function login_client(extra)
    local opts = { username = USER, password = PASS, base_url = sb.base_url }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(smsend.new(opts))
  end

  describe("verify_pin", function()
    it("verifies the right PIN, with the exact JSON on the wire", function()
      local c = token_client()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local pin = sb:last_pin(RCPT)
      assert.matches("^%d%d%d%d%d%d$", pin)
      local before = #sb:requests()
      local st = c:verify_pin{ recipient = RCPT, pin = pin }
      assert.is_true(st.ok, st.message)
      assert.equal(200, st.status)
      assert.is_nil(st.error)
      assert.is_nil(st.tries_remaining)
      local r = sb:requests()[before + 1]
      assert.equal("POST", r.method)
      assert.equal("2fa/verify", r.path)
      assert.equal(TOK, r.headers["access_token"])
      assert.equal("application/json", r.headers["content-type"])
      assert.equal('{"recipient":"+393471234567","pin":"' .. pin .. '"}', r.body)
      -- the PIN is consumed
      local again = c:verify_pin{ recipient = RCPT, pin = pin }
      assert.is_false(again.ok)
      assert.equal("wrong_pin", again.error)
    end)

    it("reports a wrong PIN with the tries remaining, and voids the PIN after three", function()
      local c = token_client()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local pin = sb:last_pin(RCPT)
      local wrong = pin == "000000" and "111111" or "000000"
      local st = c:verify_pin{ recipient = RCPT, pin = wrong }
      assert.is_false(st.ok)
      assert.equal("wrong_pin", st.error)
      assert.equal(200, st.status)
      assert.equal(2, st.tries_remaining)
      assert.is_false(st.retryable)
      assert.equal("Wrong PIN", st.message)
      assert.matches('"status":"ERROR"', st.body)
      assert.equal(1, c:verify_pin{ recipient = RCPT, pin = wrong }.tries_remaining)
      assert.equal(0, c:verify_pin{ recipient = RCPT, pin = wrong }.tries_remaining)
      local late = c:verify_pin{ recipient = RCPT, pin = pin }
      assert.equal("wrong_pin", late.error)
      assert.equal(0, late.tries_remaining)
    end)

    it("checks its fields before sending", function()
      local c = token_client()
      local cases = {
        { { recipient = RCPT }, "pin" },
        { { pin = "123456" }, "recipient" },
        { { recipient = "12345", pin = "1" }, "recipient" },
        { { recipient = RCPT, pin = "" }, "pin" },
        { { recipient = RCPT, pin = ("1"):rep(33) }, "pin" },
        { { recipient = RCPT, pin = "12\n34" }, "pin" },
        { { recipient = RCPT, pin = "12\0" }, "pin" },
        { { recipient = RCPT, pin = 123456 }, "pin" },
        { { recipient = RCPT, pin = "1", expiry = 5 }, "expiry" },
        { { recipient = RCPT, pin = "1", Pin = "1" }, "Pin" },
      }
      for i, case in ipairs(cases) do
        local st = c:verify_pin(case[1])
        assert.equal("invalid_request", st.error, "case " .. i)
        assert.equal(case[2], st.field, "case " .. i)
      end
      assert.is_true(c:verify_pin{ recipient = RCPT, pin = ("9"):rep(32) }.error == "wrong_pin")
      assert.equal(1, #sb:requests())
    end)

    it("maps a 200 that is not the status JSON to bad_response, and statuses like request_pin", function()
      for fault, code in pairs{ notjson = "bad_response", badjson = "bad_response", empty = "bad_response",
                                ["status-400"] = "bad_request", ["status-401"] = "unauthorized",
                                ["status-404"] = "not_found", ["status-503"] = "server_error" } do
        local c = token_client{ base_url = sb.url_for(fault) }
        local st = c:verify_pin{ recipient = RCPT, pin = "123456" }
        assert.equal(code, st.error, fault)
      end
    end)

    it("works at module level", function()
      assert.is_true(smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = RCPT }.ok)
      local st = smsend.verify_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                                    recipient = RCPT, pin = sb:last_pin(RCPT) }
      assert.is_true(st.ok, st.message)
      st = smsend.verify_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = RCPT,
                              pin = "1", senderName = "x" }
      assert.equal("senderName", st.field)
    end)
  end)

  describe("username and password", function()
    -- Sessions are the process's: shared by every client with the same credentials while one of
    -- them lives. Each test here starts from no session: the clients of earlier tests are collected.
    before_each(function()
      collectgarbage()
      collectgarbage()
    end)

    it("logs in lazily with the URL-encoded credentials, then uses the session key", function()
      local c = login_client()
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      local reqs = sb:requests()
      assert.equal(2, #reqs)
      assert.equal("GET", reqs[1].method)
      assert.equal("login", reqs[1].path)
      assert.equal(USER, reqs[1].query.username)
      assert.equal(PASS, reqs[1].query.password)
      assert.is_nil(reqs[1].headers["user_key"])
      assert.equal("2fa/request", reqs[2].path)
      assert.equal(UK, reqs[2].headers["user_key"])
      assert.is_string(reqs[2].headers["session_key"])
      assert.is_nil(reqs[2].headers["access_token"])
      -- a second call needs no login
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.equal("login 2fa/request 2fa/request", paths())
    end)

    it("percent-encodes every byte outside RFC 3986's unreserved set", function()
      local c = assert(smsend.new{ username = ODD_USER, password = ODD_PASS, base_url = sb.base_url })
      assert.is_true(c:login().ok)
      local r = sb:requests()[1]
      assert.equal("/API/v1.0/REST/login?username=%C3%BCn%C3%AFcode%20user"
        .. "&password=p%40ss%20w%26rd%3D%25%2B%2F%3F%23%C3%BC%E2%82%AC~._-", r.uri)
      assert.equal(ODD_PASS, r.query.password)
    end)

    it("uses the token endpoint and the Access_token header with auth = 'token'", function()
      local c = login_client{ auth = "token" }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local reqs = sb:requests()
      assert.equal("token", reqs[1].path)
      assert.is_string(reqs[2].headers["access_token"])
      assert.is_nil(reqs[2].headers["session_key"])
    end)

    it("honours login_path and token_path", function()
      local st = login_client{ login_path = "auth/login" }:login()
      assert.equal("login_failed", st.error)
      assert.equal(404, st.status)
      assert.equal("auth/login", sb:requests()[1].path)
      sb:reset()
      assert.is_true(login_client{ auth = "token", token_path = "token" }:login().ok)
      assert.is_nil(smsend.new{ username = USER, password = PASS, login_path = "/abs" })
      assert.is_nil(smsend.new{ username = USER, password = PASS, token_path = "a?b" })
    end)

    it("login() returns a status table without the keys", function()
      local c = login_client()
      local st = c:login()
      assert.is_true(st.ok)
      assert.equal(200, st.status)
      assert.is_nil(st.body)
      assert.is_nil(st.error)
      local login = sb:requests()[1]
      assert.equal("login", login.path)
      for _, v in pairs(st) do
        if type(v) == "string" then assert.is_nil(v:find(UK, 1, true)) end
      end
      assert.is_nil(tostring(c):find(PASS, 1, true))
    end)

    it("renews an expired session exactly once and repeats the call", function()
      local c = login_client()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      sb:expire_sessions()
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      assert.equal("login 2fa/request 2fa/request login 2fa/request", paths())
      local reqs = sb:requests()
      assert.not_equal(reqs[2].headers["session_key"], reqs[5].headers["session_key"])
      assert.equal(reqs[3].headers["session_key"], reqs[2].headers["session_key"])
      -- and verify_pin renews too
      sb:expire_sessions()
      assert.is_true(c:verify_pin{ recipient = RCPT, pin = sb:last_pin(RCPT) }.ok)
    end)

    it("renews when the session idles out on the gateway", function()
      local c = login_client()
      sb:config{ session_ttl = 1 }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      helpers.sleep(1.3)
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      sb:config{ session_ttl = 300 }
      assert.equal("login 2fa/request 2fa/request login 2fa/request", paths())
    end)

    it("bounds the whole call with timeout, login included", function()
      -- each exchange takes 0.3 s: the login fits in 0.5 s, the PIN call only gets what is left
      local c = login_client{ base_url = sb.url_for("slow-300"), timeout = 0.5 }
      local st = c:request_pin{ recipient = RCPT }
      assert.equal("timeout", st.error, st.message)
      assert.is_true(st.elapsed < 0.8, tostring(st.elapsed))
      assert.equal("login 2fa/request", paths())
    end)

    it("starts from a given session key and renews it when it is stale", function()
      local c = assert(smsend.new{ user_key = UK, session_key = "STALE", username = USER, password = PASS,
                                   base_url = sb.base_url })
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.equal("2fa/request login 2fa/request", paths())
    end)

    it("returns unauthorized after a second 401", function()
      -- the login answers a session key, but auth = "token" sends it as Access_token: always 401
      local c = assert(smsend.new{ user_key = UK, session_key = "STALE", username = USER, password = PASS,
                                   auth = "token", token_path = "login", base_url = sb.base_url })
      local st = c:request_pin{ recipient = RCPT }
      assert.equal("unauthorized", st.error)
      assert.equal(401, st.status)
      assert.equal("2fa/request login 2fa/request", paths())
    end)

    it("a first 401 right after a fresh login is final", function()
      local c = assert(smsend.new{ username = USER, password = PASS, auth = "token", token_path = "login",
                                   base_url = sb.base_url })
      local st = c:request_pin{ recipient = RCPT }
      assert.equal("unauthorized", st.error)
      assert.equal("login 2fa/request", paths())
    end)

    it("reports a wrong password as login_failed with the login's status, sending nothing else", function()
      local c = login_client{ password = "wrong" }
      local st = c:request_pin{ recipient = RCPT }
      assert.is_false(st.ok)
      assert.equal("login_failed", st.error)
      assert.equal(404, st.status)
      assert.is_false(st.retryable)
      assert.equal("login", paths())
      assert.is_nil(st.message:find("wrong", 1, true))
      st = c:login()
      assert.equal("login_failed", st.error)
    end)

    it("reports a login answer that is not KEY;SECRET as bad_response without its body", function()
      local c = login_client{ base_url = sb.url_for("login-garbage") }
      local st = c:request_pin{ recipient = RCPT }
      assert.equal("bad_response", st.error)
      assert.is_nil(st.body)
      assert.equal(1, #sb:requests())
    end)

    it("reports a gateway that cannot be reached during login as retryable", function()
      local c = login_client{ base_url = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/" }
      local st = c:request_pin{ recipient = RCPT }
      assert.equal("connect_failed", st.error)
      assert.is_true(st.retryable)
    end)

    it("keeps the session in the module-level cache", function()
      local t = { username = USER, password = PASS, base_url = sb.base_url, recipient = RCPT }
      assert.is_true(smsend.request_pin(t).ok)
      assert.is_true(smsend.request_pin(t).ok)
      sb:expire_sessions()
      assert.is_true(smsend.request_pin(t).ok)
      assert.equal("login 2fa/request 2fa/request 2fa/request login 2fa/request", paths())
    end)

    it("reads SMSEND_USERNAME and SMSEND_PASSWORD", function()
      local out = util.run_lua([[
        local smsend = require "smsend"
        local c = assert(smsend.new{})
        print(c:request_pin{ recipient = "+393471234567" }.ok)
      ]], { SMSEND_USERNAME = USER, SMSEND_PASSWORD = PASS, SMSEND_BASE_URL = sb.base_url })
      assert.equal("true", out)
      assert.equal("login 2fa/request", paths())
    end)
  end)

  describe("check_session", function()
    it("is false before any login, without a call", function()
      local st = login_client():check_session()
      assert.is_true(st.ok)
      assert.is_false(st.valid)
      assert.equal(0, #sb:requests())
    end)

    it("tells a valid session from an expired one without renewing it", function()
      local c = login_client()
      assert.is_true(c:login().ok)
      local st = c:check_session()
      assert.is_true(st.ok)
      assert.is_true(st.valid)
      assert.equal(200, st.status)
      sb:expire_sessions()
      st = c:check_session()
      assert.is_true(st.ok)
      assert.is_false(st.valid)
      assert.equal("login checksession checksession", paths())
      local r = sb:requests()[2]
      assert.equal("GET", r.method)
      assert.equal(UK, r.headers["user_key"])
    end)

    it("reports an answer that is neither true nor false as bad_response", function()
      local c = token_client{ base_url = sb.url_for("notjson") }
      assert.equal("bad_response", c:check_session().error)
    end)
  end)

  describe("min_interval", function()
    -- Claims live in the process (every client and Lua state shares them), so each test takes
    -- numbers no other test uses.
    local serial = 0
    local function fresh()
      serial = serial + 1
      return string.format("+3934%02d%06d", serial, math.random(0, 999999))
    end
    it("refuses a second PIN to the same recipient within the interval, sending nothing", function()
      local RCPT = fresh()
      local c = token_client{ min_interval = 30 }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local st = c:request_pin{ recipient = RCPT }
      assert.is_false(st.ok)
      assert.equal("cooldown", st.error)
      assert.is_false(st.retryable)
      assert.is_nil(st.status)
      assert.is_true(st.retry_after > 0 and st.retry_after <= 30)
      st = c:request_pin{ recipient = "00" .. RCPT:sub(2) }
      assert.equal("cooldown", st.error)
      assert.is_true(c:request_pin{ recipient = fresh() }.ok)
      assert.equal(2, #sb:requests())
    end)

    it("lets the recipient through again after the interval", function()
      local RCPT = fresh()
      local c = token_client{ min_interval = 0.3 }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.equal("cooldown", c:request_pin{ recipient = RCPT }.error)
      helpers.sleep(0.4)
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    end)

    it("does not count requests that never left", function()
      local RCPT = fresh()
      local c = token_client{ min_interval = 30, base_url = "http://127.0.0.1:" .. util.closed_port() .. "/" }
      assert.equal("connect_failed", c:request_pin{ recipient = RCPT }.error)
      assert.equal("connect_failed", c:request_pin{ recipient = RCPT }.error)
    end)

    it("is off by default and rejects bad values", function()
      local RCPT = fresh()
      local c = token_client()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.is_nil(smsend.new{ user_key = UK, access_token = TOK, min_interval = -1 })
      assert.is_nil(smsend.new{ user_key = UK, access_token = TOK, min_interval = 0 / 0 })
    end)

    it("holds across module-level calls", function()
      local t = { user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = fresh(), min_interval = 60 }
      assert.is_true(smsend.request_pin(t).ok)
      assert.equal("cooldown", smsend.request_pin(t).error)
    end)

    it("holds across clients of the process, even with another min_interval", function()
      local RCPT = fresh()
      assert.is_true(token_client{ min_interval = 60 }:request_pin{ recipient = RCPT }.ok)
      local st = token_client{ min_interval = 5 }:request_pin{ recipient = RCPT }
      assert.equal("cooldown", st.error)
      assert.is_true(st.retry_after > 5 and st.retry_after <= 60)
      assert.equal(1, #sb:requests())
    end)

    -- The process's table of claims has a fixed size (guard.h: 16384 entries): filled with live
    -- claims of ever new numbers, it refuses new numbers as guard_unavailable (retryable, nothing
    -- sent) rather than forget a live claim, and the process does not grow. Run in a child process:
    -- a full table would refuse the numbers of every later spec in this one.
    it("keeps its memory bounded with many recipients", function()
      local code = [[
        local smsend = require "smsend"
        local function rss_kb()
          local f = assert(io.open("/proc/self/statm"))
          local _, pages = f:read("*n", "*n")
          f:close()
          return pages * 4
        end
        local c = assert(smsend.new{ user_key = "SBXUSER", access_token = "SBXTOKEN",
                                     base_url = os.getenv("BASE"), min_interval = 600 })
        local function number(i) return string.format("+39%010d", i) end
        assert(c:request_pin{ recipient = number(1) }.ok)
        local rss0 = rss_kb()
        local sent, full_at = 1, nil
        for i = 2, 20000 do
          local st = c:request_pin{ recipient = number(i) }
          if st.ok then sent = sent + 1
          elseif st.error == "guard_unavailable" and st.retryable then full_at = full_at or i
          else error(st.error .. ": " .. st.message) end
        end
        print(sent, full_at, c:request_pin{ recipient = number(1) }.error, rss_kb() - rss0)
      ]]
      local out = util.run_lua(code, { BASE = sb.base_url })
      local sent, full_at, first, growth = out:match("^(%d+)\t(%d+)\t(%S+)\t(%-?%d+)$")
      assert.is_truthy(sent, out)
      sent, full_at, growth = tonumber(sent), tonumber(full_at), tonumber(growth)
      assert.is_true(sent > 10000 and sent <= 16384, out)  -- most of the table, never more
      assert.is_true(full_at > 10000, out)
      assert.equal("cooldown", first)                        -- a live claim is never forgotten
      if not os.getenv("ASAN_OPTIONS") then -- ASan's quarantine holds freed memory on purpose
        assert.is_true(growth < 4096, ("resident memory grew by %d KiB"):format(growth))
      end
      assert.equal(sent, #sb:requests())                     -- refused numbers sent nothing
    end)
  end)
end)
