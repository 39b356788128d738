-- client_spec.lua — smsend.new, client:request_pin and the module-level request_pin against the
-- sandbox gateway on loopback: what went over the wire, every error code, TLS, keep-alive, secrets.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local UK, TOK = "SBXUSER", "SBXTOKEN"
local RCPT = "+393471234567"

describe("smsend (request_pin)", function()
  local sb = helpers.sandbox_fixture({}, { reset_each = true })

  local function client(extra)
    local opts = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return assert(smsend.new(opts))
  end

  local function gateway_requests(path)
    return sb:requests(path)
  end

  -- A CONNECT proxy on loopback (spec/support/connect_proxy.lua) that logs what it was asked.
  local function start_proxy()
    local port = util.closed_port()
    local log = os.tmpname()
    local cmd = util.interpreter() .. " spec/support/connect_proxy.lua " .. port .. " " .. log
    local pid = io.popen(cmd .. " >/dev/null 2>&1 & echo $!"):read("*l")
    local sandbox = helpers.sandbox
    for _ = 1, 100 do
      if sandbox.port_open(port) then break end
      helpers.sleep(0.05)
    end
    return {
      url = "http://127.0.0.1:" .. port,
      lines = function()
        local out = {}
        for l in (helpers.read_file(log) or ""):gmatch("[^\n]+") do out[#out + 1] = l end
        return out
      end,
      stop = function() os.execute("kill " .. pid .. " 2>/dev/null"); os.remove(log) end,
    }
  end

  describe("smsend.new", function()
    it("has a version string", function()
      assert.is_string(smsend._VERSION)
      assert.matches("^%d+%.%d+%.%d+", smsend._VERSION)
    end)

    it("raises only when its argument is not a table", function()
      assert.has_error(function() smsend.new() end)
      assert.has_error(function() smsend.new("user_key") end)
      assert.has_error(function() smsend.new(42) end)
    end)

    it("returns nil and a message for bad configurations", function()
      local cases = {
        {},                                                                  -- no credentials
        { user_key = UK },                                                   -- key without a secret
        { access_token = TOK },                                              -- secret without key
        { user_key = UK, access_token = TOK, session_key = "S" },            -- both
        { username = "u" },                                                  -- no password
        { user_key = UK, access_token = TOK, base_url = "http://example.com/API/" }, -- clear text to another host
        { user_key = UK, access_token = TOK, base_url = "ftp://127.0.0.1/" },
        { user_key = UK, access_token = TOK, base_url = "https://user:pw@example.com/" },
        { user_key = UK, access_token = TOK, base_url = "https://example.com/?a=b" },
        { user_key = UK, access_token = TOK, base_url = "not a url" },
        { user_key = "UK\r\nX-Evil: 1", access_token = TOK },
        { user_key = UK, access_token = "T\nOK" },
        { user_key = UK, access_token = "T\0K" },
        { user_key = UK, access_token = TOK, timeout = 0 },
        { user_key = UK, access_token = TOK, timeout = -1 },
        { user_key = UK, access_token = TOK, timeout = 0 / 0 },
        { user_key = UK, access_token = TOK, connect_timeout = "5" },
        { user_key = UK, access_token = TOK, auth = "magic" },
        { user_key = UK, access_token = TOK, timout = 5 },                   -- typo
        { user_key = UK, access_token = TOK, recipient = RCPT },             -- a request field
        { user_key = UK, access_token = 42 },
        { user_key = UK, access_token = TOK, proxy = "http://127.0.0.1:99999" },
        { user_key = UK, access_token = TOK, proxy = "gopher://127.0.0.1:1" },
        { user_key = UK, access_token = TOK, proxy = "http://[::1" },
        { user_key = UK, access_token = TOK, proxy = "http://host:1/path" },
      }
      for i, opts in ipairs(cases) do
        local c, err = smsend.new(opts)
        assert.is_nil(c, "case " .. i)
        assert.is_string(err, "case " .. i)
        assert.is_true(#err > 10, "case " .. i)
      end
    end)

    it("allows http:// only for loopback hosts", function()
      for _, url in ipairs{ "http://127.0.0.1:1/", "http://127.1.2.3/x/", "http://localhost:8080/", "http://[::1]:9/" } do
        assert.is_not_nil(smsend.new{ user_key = UK, access_token = TOK, base_url = url }, url)
      end
      for _, url in ipairs{ "http://128.0.0.1/", "http://10.0.0.1/", "http://localhost.example.com/", "http://[::2]/" } do
        assert.is_nil(smsend.new{ user_key = UK, access_token = TOK, base_url = url }, url)
      end
      assert.is_not_nil(smsend.new{ user_key = UK, access_token = TOK, base_url = "https://gateway.example.com/API/" })
    end)

    it("shows only a redacted form in tostring", function()
      local c = smsend.new{ user_key = "SENTINEL-UK-1234", access_token = "SENTINEL-TOKEN-5678", base_url = sb.base_url }
      local s = tostring(c)
      assert.matches("^smsend%.client", s)
      assert.is_nil(s:find("SENTINEL", 1, true))
      c:close()
      assert.matches("closed", tostring(c))
    end)

    it("raises when a closed client is used, and close is idempotent", function()
      local c = client()
      c:close()
      c:close()
      assert.is_true(c:is_closed())
      assert.has_error(function() c:request_pin{ recipient = RCPT } end)
      assert.equal(0, #gateway_requests())
    end)

    it("raises when a method gets no table", function()
      local c = client()
      assert.has_error(function() c:request_pin() end)
      assert.has_error(function() c:request_pin("+393471234567") end)
      assert.has_error(function() c.request_pin({}, { recipient = RCPT }) end)
      assert.equal(0, #gateway_requests())
    end)
  end)

  describe("client:request_pin on the wire", function()
    it("POSTs the exact JSON with the access-token headers", function()
      local c = client{ user_agent = "my-app/2.0" }
      local st = c:request_pin{ recipient = RCPT, senderName = "MyApp", expiry = 5, messageBody = "Your code is %PIN%" }
      assert.is_true(st.ok)
      assert.equal(200, st.status)
      assert.is_nil(st.error)
      assert.is_false(st.retryable)
      assert.is_number(st.elapsed)
      assert.is_true(st.elapsed >= 0)
      assert.equal('{"status":"OK"}', st.body)
      local reqs = gateway_requests()
      assert.equal(1, #reqs)
      local r = reqs[1]
      assert.equal("POST", r.method)
      assert.equal("2fa/request", r.path)
      assert.equal(UK, r.headers["user_key"])
      assert.equal(TOK, r.headers["access_token"])
      assert.is_nil(r.headers["session_key"])
      assert.equal("application/json", r.headers["content-type"])
      assert.matches("^smsend%-lua/" .. smsend._VERSION:gsub("%.", "%%.") .. " libcurl/[%d.]+ my%-app/2%.0$", r.headers["user-agent"])
      assert.equal('{"recipient":"+393471234567","senderName":"MyApp","expiry":5,"messageBody":"Your code is %PIN%"}', r.body)
      c:close()
    end)

    it("sends Session_key when given a session key", function()
      local key, session_key = helpers.login(sb.base_url, "sandbox", "sandbox-pass")
      local c = assert(smsend.new{ user_key = key, session_key = session_key, base_url = sb.base_url })
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      local r = gateway_requests("2fa/request")[1]
      assert.equal(session_key, r.headers["session_key"])
      assert.is_nil(r.headers["access_token"])
      assert.equal('{"recipient":"+393471234567"}', r.body)
    end)

    it("leaves out optional fields and writes integral floats as integers", function()
      local c = client()
      assert.is_true(c:request_pin{ recipient = "00393471234567", expiry = 5.0 }.ok)
      assert.equal('{"recipient":"00393471234567","expiry":5}', gateway_requests()[1].body)
    end)

    it("escapes JSON correctly and passes UTF-8 through byte for byte", function()
      local c = client()
      local text = 'Il tuo codice è %PIN% "ok" \\ back\nline\ttab\1\31 €😀'
      assert.is_true(c:request_pin{ recipient = RCPT, messageBody = text, senderName = "Caffè" }.ok)
      assert.equal('{"recipient":"+393471234567","senderName":"Caffè","messageBody":'
        .. '"Il tuo codice è %PIN% \\"ok\\" \\\\ back\\nline\\ttab\\u0001\\u001f €😀"}', gateway_requests()[1].body)
      local sms = sb:sms()
      assert.equal(1, #sms)
      assert.equal("Caffè", sms[1].sender)
    end)

    it("keeps one connection alive across many calls", function()
      local c = client()
      for _ = 1, 25 do assert.is_true(c:request_pin{ recipient = RCPT }.ok) end
      local reqs = gateway_requests()
      assert.equal(25, #reqs)
      for i = 2, #reqs do
        assert.equal(reqs[1].connection, reqs[i].connection)
        assert.equal(reqs[i - 1].connection_requests + 1, reqs[i].connection_requests)
      end
    end)

    it("shares kept-alive connections between the clients of the process", function()
      for _ = 1, 5 do
        local c = client{ user_agent = "another-" .. _ }
        assert.is_true(c:request_pin{ recipient = RCPT }.ok)
        c:close()
      end
      local reqs = gateway_requests()
      assert.equal(5, #reqs)
      for i = 2, #reqs do assert.equal(reqs[1].connection, reqs[i].connection) end
    end)

    it("works with a base_url without the trailing slash", function()
      local c = client{ base_url = sb.base_url:gsub("/$", "") }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.equal("2fa/request", gateway_requests()[1].path)
    end)

    it("honours the proxy option for an https:// base_url, through a CONNECT tunnel", function()
      local proxy = start_proxy()
      finally(proxy.stop)
      local c = client{ base_url = sb.tls_urls.tls, cainfo = sb.ca_file, proxy = proxy.url }
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      assert.equal(1, #gateway_requests("2fa/request"))
      local lines = proxy.lines()
      assert.equal(1, #lines)
      assert.matches("^CONNECT 127%.0%.0%.1:%d+$", lines[1])
    end)

    it("refuses a proxy with an http:// base_url: the proxy would read the credentials in clear", function()
      local proxy = start_proxy()
      finally(proxy.stop)
      local c, err = smsend.new{ user_key = UK, access_token = TOK, base_url = sb.base_url, proxy = proxy.url }
      assert.is_nil(c)
      assert.matches("proxy", err)
      assert.matches("http://", err, 1, true)
      local st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                                     proxy = proxy.url, recipient = RCPT }
      assert.equal("invalid_request", st.error)
      assert.equal("proxy", st.field)
      assert.equal(0, #gateway_requests())
      assert.equal(0, #proxy.lines())
    end)
  end)

  describe("libcurl's proxy variables", function()
    it("are read once for an https:// base_url, with no_proxy too, and never for http://", function()
      local proxy = start_proxy()
      finally(proxy.stop)
      local function proxied() return #proxy.lines() end
      local purl = proxy.url
      local code = [[
        local smsend = require "smsend"
        local c = assert(smsend.new{ user_key = "SBXUSER", access_token = "SBXTOKEN", base_url = os.getenv("URL"),
                                     cainfo = os.getenv("CA") })
        local st = c:request_pin{ recipient = "+393471234567" }
        print(st.ok, st.error)
      ]]
      local env = { https_proxy = purl, URL = sb.tls_urls.tls, CA = sb.ca_file }
      assert.equal("true\tnil", util.run_lua(code, env))
      assert.equal(1, proxied())
      env.no_proxy = "127.0.0.1"
      assert.equal("true\tnil", util.run_lua(code, env))
      assert.equal(1, proxied())
      -- http:// to loopback: http_proxy, HTTP_PROXY and ALL_PROXY are all ignored
      env = { http_proxy = purl, HTTP_PROXY = purl, ALL_PROXY = purl, all_proxy = purl, URL = sb.base_url, CA = sb.ca_file }
      assert.equal("true\tnil", util.run_lua(code, env))
      assert.equal(1, proxied())
      assert.equal(3, #gateway_requests("2fa/request"))
    end)
  end)

  describe("field rules", function()
    local function invalid(fields, field)
      local c = client()
      local st = c:request_pin(fields)
      assert.is_false(st.ok)
      assert.equal("invalid_request", st.error)
      assert.equal(field, st.field)
      assert.is_string(st.message)
      assert.is_false(st.retryable)
      assert.is_nil(st.status)
      c:close()
    end

    it("rejects unknown keys, naming them", function()
      invalid({ recipient = RCPT, sendername = "x" }, "sendername")
      invalid({ recipient = RCPT, pin = "123" }, "pin")
      invalid({ recipient = RCPT, user_key = "x" }, "user_key")
      assert.equal(0, #gateway_requests())
    end)

    it("checks recipient", function()
      for _, ok in ipairs{ "+123456", "+123456789012345", "00123456", "00123456789012345" } do
        assert.is_true(client():request_pin{ recipient = ok }.ok, ok)
      end
      sb:reset()
      for _, bad in ipairs{ "+12345", "+1234567890123456", "0012345", "3471234567", "+39 347 1234567",
                             "+39347123456a", "", "+", "0+39347123", "+393471234567\0" } do
        invalid({ recipient = bad }, "recipient")
      end
      invalid({ recipient = 393471234567 }, "recipient")
      invalid({ senderName = "x" }, "recipient")
      assert.equal(0, #gateway_requests())
    end)

    it("checks senderName", function()
      assert.is_true(client():request_pin{ recipient = RCPT, senderName = "ABCDEFGHIJK" }.ok)
      assert.is_true(client():request_pin{ recipient = RCPT, senderName = "1234567890123456" }.ok)
      assert.is_true(client():request_pin{ recipient = RCPT, senderName = "àèìòùàèìòùà" }.ok)
      sb:reset()
      invalid({ recipient = RCPT, senderName = "ABCDEFGHIJKL" }, "senderName")
      invalid({ recipient = RCPT, senderName = "12345678901234567" }, "senderName")
      invalid({ recipient = RCPT, senderName = "" }, "senderName")
      invalid({ recipient = RCPT, senderName = "A\nB" }, "senderName")
      invalid({ recipient = RCPT, senderName = 12345 }, "senderName")
      invalid({ recipient = RCPT, senderName = "\255\254" }, "senderName")
      assert.equal(0, #gateway_requests())
    end)

    it("checks expiry", function()
      for _, bad in ipairs{ 0, -1, 2.5, 0 / 0, math.huge, -math.huge, 2 ^ 31, "5", true } do
        invalid({ recipient = RCPT, expiry = bad }, "expiry")
      end
      assert.equal(0, #gateway_requests())
    end)

    it("checks messageBody", function()
      invalid({ recipient = RCPT, messageBody = "" }, "messageBody")
      invalid({ recipient = RCPT, messageBody = "a\0b" }, "messageBody")
      invalid({ recipient = RCPT, messageBody = "caf\233" }, "messageBody")          -- Latin-1, not UTF-8
      invalid({ recipient = RCPT, messageBody = "\192\128" }, "messageBody")         -- overlong NUL
      invalid({ recipient = RCPT, messageBody = "\237\160\128" }, "messageBody")     -- surrogate
      invalid({ recipient = RCPT, messageBody = ("x"):rep(1024 * 1024) }, "messageBody")
      invalid({ recipient = RCPT, messageBody = {} }, "messageBody")
      assert.equal(0, #gateway_requests())
    end)

    it("recognises field names however the key string was made", function()
      local parts = { "recip", "ient" }
      local key = table.concat(parts)                       -- built at run time, not a constant
      local st = client():request_pin{ [key] = RCPT, [("sender") .. ("Name")] = "MyApp" }
      assert.is_true(st.ok, st.message)
      assert.equal('{"recipient":"+393471234567","senderName":"MyApp"}', gateway_requests()[1].body)
    end)

    it("reads request tables raw, ignoring metatables", function()
      local t = setmetatable({}, { __index = { recipient = RCPT } })
      invalid(t, "recipient")
      local st = client():request_pin(setmetatable({ recipient = RCPT }, { __pairs = function() error("no") end }))
      assert.is_true(st.ok)
    end)
  end)

  describe("error codes", function()
    local function call_fault(fault, extra)
      local opts = { base_url = sb.url_for(fault) }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local c = client(opts)
      local st = c:request_pin{ recipient = RCPT }
      return st, c
    end

    local function expect(st, code, status, retryable)
      assert.is_false(st.ok)
      assert.equal(code, st.error, st.message)
      assert.equal(status, st.status)
      assert.equal(retryable, st.retryable)
      assert.is_string(st.message)
      assert.is_number(st.elapsed)
    end

    it("maps HTTP statuses", function()
      local map = { [400] = "bad_request", [401] = "unauthorized", [404] = "not_found", [500] = "server_error",
                    [502] = "server_error", [503] = "server_error", [418] = "unexpected_status",
                    [204] = "unexpected_status" }
      for status, code in pairs(map) do
        local st = call_fault("status-" .. status)
        expect(st, code, status, false)
        if status ~= 204 then assert.matches("injected", st.body) end
      end
    end)

    it("reports 401 for a wrong token and 404 for an unknown user_key", function()
      expect(client{ access_token = "WRONG" }:request_pin{ recipient = RCPT }, "unauthorized", 401, false)
      expect(client{ user_key = "NOBODY" }:request_pin{ recipient = RCPT }, "not_found", 404, false)
    end)

    it("gives retry_after with a 429 when the gateway says", function()
      -- a 429 is a refusal before acting: nothing was sent, so it is safe to retry
      local st = call_fault("retry-after-7")
      expect(st, "rate_limited", 429, true)
      assert.equal(7, st.retry_after)
      st = call_fault("ratelimit")
      expect(st, "rate_limited", 429, true)
      assert.is_nil(st.retry_after)
    end)

    it("does not follow redirects, so credentials never go elsewhere", function()
      local st = call_fault("redirect")
      expect(st, "unexpected_status", 302, false)
      for _, r in ipairs(sb:requests()) do
        assert.is_nil(r.path:find("redirected", 1, true), "the redirect was followed")
      end
    end)

    it("reports unreadable, truncated and oversized answers as bad_response", function()
      for _, fault in ipairs{ "notjson", "empty", "badjson", "big", "cut", "badlen", "garbage" } do
        local st = call_fault(fault)
        assert.is_false(st.ok, fault)
        assert.equal("bad_response", st.error, fault .. ": " .. tostring(st.message))
        assert.is_false(st.retryable, fault)
      end
      -- an oversized answer keeps its status and its first 64 KiB, no more
      local st = call_fault("big")
      assert.equal(200, st.status)
      assert.equal(64 * 1024, #st.body)
      st = call_fault("cut")
      assert.equal(200, st.status)
      assert.equal(10, #st.body)
    end)

    it("reports a refused connection as connect_failed, retryable", function()
      local c = client{ base_url = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/" }
      expect(c:request_pin{ recipient = RCPT }, "connect_failed", nil, true)
    end)

    it("reports an unresolvable host as resolve_failed, retryable", function()
      -- a 64-character label cannot be a DNS name: the resolver fails without sending a query
      local c = client{ base_url = "https://" .. ("a"):rep(64) .. ".invalid/API/v1.0/REST/" }
      expect(c:request_pin{ recipient = RCPT }, "resolve_failed", nil, true)
    end)

    it("reports a timeout after the request went out as not retryable, and never resends", function()
      local st = call_fault("hang", { timeout = 0.5 })
      expect(st, "timeout", nil, false)
      assert.is_true(st.elapsed >= 0.45 and st.elapsed < 3, tostring(st.elapsed))
      assert.equal(1, #gateway_requests("2fa/request"))
    end)

    it("reports a dropped connection as network_error, not retryable, never resent", function()
      local st = call_fault("drop")
      expect(st, "network_error", nil, false)
      assert.equal(1, #gateway_requests("2fa/request"))
    end)

    it("does not let libcurl resend a PIN request on a reused connection", function()
      -- the first call leaves a kept-alive connection; the gateway drops the second one on it,
      -- which libcurl would silently resend on a fresh connection if the module let it
      local c = client()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      sb:config{ drop_next = true }
      local st = c:request_pin{ recipient = RCPT }
      expect(st, "network_error", nil, false)
      assert.equal(2, #gateway_requests("2fa/request"))
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    end)

    it("lets the very client that met a fault work again on its next call", function()
      local c = client{ timeout = 1 }
      for _, fault in ipairs{ "hang", "drip", "drop", "cut", "badlen", "garbage", "big", "status-500",
                              "status-400", "retry-after-3", "notjson", "redirect" } do
        sb:config{ fault_next = fault }
        local bad = c:request_pin{ recipient = RCPT }
        assert.is_false(bad.ok, fault)
        local good = c:request_pin{ recipient = RCPT }
        assert.is_true(good.ok, "after " .. fault .. ": " .. tostring(good.message))
      end
      local faults = {}
      for _, r in ipairs(gateway_requests("2fa/request")) do
        if r.fault then faults[#faults + 1] = r.fault end
      end
      assert.equal(12, #faults)
    end)

    it("keeps working after every fault", function()
      local c = client{ timeout = 0.5 }
      for _, fault in ipairs{ "hang", "drop", "cut", "garbage", "big", "status-500" } do
        local bad = client{ base_url = sb.url_for(fault), timeout = 0.5 }
        assert.is_false(bad:request_pin{ recipient = RCPT }.ok)
        local st = bad:request_pin{ recipient = RCPT }
        assert.is_false(st.ok)
        bad:close()
        assert.is_true(c:request_pin{ recipient = RCPT }.ok, "after " .. fault)
      end
    end)
  end)

  describe("TLS", function()
    it("accepts the gateway with a CA given in cainfo", function()
      local c = client{ base_url = sb.tls_urls.tls, cainfo = sb.ca_file }
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      for _ = 1, 5 do assert.is_true(c:request_pin{ recipient = RCPT }.ok) end
      local reqs = gateway_requests()
      assert.equal(6, #reqs)
      for i = 2, #reqs do assert.equal(reqs[1].connection, reqs[i].connection) end
    end)

    it("accepts the CA from a capath directory", function()
      local dir = util.capath_for(sb.ca_file)
      local c = client{ base_url = sb.tls_urls.tls, capath = dir }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    end)

    local function refused(url, extra)
      local opts = { base_url = url }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local st = client(opts):request_pin{ recipient = RCPT }
      assert.is_false(st.ok)
      assert.equal("tls_failed", st.error, st.message)
      assert.is_true(st.retryable)
      assert.is_nil(st.status)
    end

    it("refuses an untrusted certificate", function()
      refused(sb.tls_urls.tls)                                   -- test CA not given
      refused(sb.tls_urls.untrusted, { cainfo = sb.ca_file })   -- self-signed
    end)

    it("refuses a certificate for another host", function()
      refused(sb.tls_urls.wrong_host, { cainfo = sb.ca_file })
    end)

    it("refuses an expired certificate", function()
      refused(sb.tls_urls.expired, { cainfo = sb.ca_file })
    end)

    it("keeps the parent's TLS connection intact when a forked child closes its copy", function()
      if type(jit) ~= "table" then
        pending("needs LuaJIT's FFI to fork")
        return
      end
      local ffi = require "ffi"
      pcall(ffi.cdef, "int fork(void); int waitpid(int pid, int *status, int options); void _exit(int status);")
      local c = client{ base_url = sb.tls_urls.tls, cainfo = sb.ca_file }
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local pid = ffi.C.fork()
      if pid == 0 then
        c:close()          -- cleans up the inherited handle: must not touch the parent's TLS
        ffi.C._exit(0)
      end
      local status = ffi.new("int[1]")
      assert.equal(pid, ffi.C.waitpid(pid, status, 0))
      local st = c:request_pin{ recipient = RCPT }
      assert.is_true(st.ok, st.message)
      local reqs = gateway_requests()
      assert.equal(2, #reqs)
      assert.equal(reqs[1].connection, reqs[2].connection)
    end)

    it("refuses plain HTTP on the TLS port", function()
      refused("https://127.0.0.1:" .. sb.port .. "/API/v1.0/REST/", { cainfo = sb.ca_file })
      assert.equal(0, #gateway_requests())
    end)
  end)

  describe("module-level smsend.request_pin", function()
    it("takes fields and options in one table and reuses one connection", function()
      for _ = 1, 5 do
        local st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                                       recipient = RCPT, senderName = "MyApp" }
        assert.is_true(st.ok, st.message)
      end
      local reqs = gateway_requests()
      assert.equal(5, #reqs)
      for i = 2, 5 do assert.equal(reqs[1].connection, reqs[i].connection) end
      assert.equal('{"recipient":"+393471234567","senderName":"MyApp"}', reqs[5].body)
    end)

    it("keeps separate clients for separate configurations", function()
      local a = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = RCPT }
      local b = smsend.request_pin{ user_key = UK, access_token = "WRONG", base_url = sb.base_url, recipient = RCPT }
      assert.is_true(a.ok)
      assert.equal("unauthorized", b.error)
    end)

    it("stays bounded with many configurations", function()
      for i = 1, 40 do
        local st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                                       user_agent = "cfg-" .. i, recipient = RCPT }
        assert.is_true(st.ok)
      end
      local conns = {}
      for _, r in ipairs(gateway_requests()) do conns[r.connection] = true end
      local n = 0
      for _ in pairs(conns) do n = n + 1 end
      -- the clients differ, the way they connect does not: one kept-alive connection serves them all
      assert.equal(1, n)
      -- the process holds only a few connections open
      assert.is_true(util.open_sockets_to(sb.port) <= 10, "too many cached connections")
    end)

    it("returns invalid_request for bad fields and bad options without sending", function()
      local st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = "123" }
      assert.equal("invalid_request", st.error)
      assert.equal("recipient", st.field)
      st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = "http://example.com/", recipient = RCPT }
      assert.equal("invalid_request", st.error)
      assert.equal("base_url", st.field)
      st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = RCPT, expiri = 5 }
      assert.equal("invalid_request", st.error)
      assert.equal("expiri", st.field)
      st = smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url, recipient = RCPT, timeout = "x" }
      assert.equal("invalid_request", st.error)
      assert.equal("timeout", st.field)
      st = smsend.request_pin{ base_url = sb.base_url, recipient = RCPT }
      assert.equal("invalid_request", st.error)
      assert.equal(0, #gateway_requests())
      assert.has_error(function() smsend.request_pin("x") end)
    end)
  end)

  describe("environment", function()
    it("reads SMSEND_* when no credential is given", function()
      local out = util.run_lua([[
        local smsend = require "smsend"
        local c = assert(smsend.new{})
        local st = c:request_pin{ recipient = "+393471234567" }
        local st2 = smsend.request_pin{ recipient = "+393471234567" }
        print(st.ok, st2.ok)
      ]], { SMSEND_USER_KEY = UK, SMSEND_ACCESS_TOKEN = TOK, SMSEND_BASE_URL = sb.base_url })
      assert.equal("true\ttrue", out)
      assert.equal(2, #gateway_requests("2fa/request"))
    end)
  end)

  describe("secrets", function()
    it("never appear in status tables, messages or tostring", function()
      local secret_key, secret_tok = "SENTINELKEY-7f3a9", "SENTINELTOKEN-c81d2"
      local seen = {}
      local function scan(v)
        if type(v) == "table" then for k, x in pairs(v) do scan(k); scan(x) end
        else seen[#seen + 1] = tostring(v) end
      end
      local c = assert(smsend.new{ user_key = secret_key, access_token = secret_tok, base_url = sb.base_url })
      scan(c:request_pin{ recipient = RCPT })                     -- 404 unknown key
      scan(c:request_pin{ recipient = "bad" })
      scan(tostring(c))
      for _, fault in ipairs{ "status-500", "garbage", "drop", "redirect" } do
        local f = assert(smsend.new{ user_key = secret_key, access_token = secret_tok, base_url = sb.url_for(fault) })
        scan(f:request_pin{ recipient = RCPT })
        scan(tostring(f))
      end
      scan(smsend.request_pin{ user_key = secret_key, access_token = secret_tok, base_url = sb.base_url, recipient = RCPT })
      scan({ smsend.new{ user_key = secret_key, access_token = secret_tok .. "\n" } })
      local all = table.concat(seen, "\n")
      assert.is_true(#all > 100)
      assert.is_nil(all:find("SENTINEL", 1, true))
    end)
  end)
end)
