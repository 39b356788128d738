-- Specs of the local sandbox gateway (sandbox/), checked with luasocket only.
-- Run from the repo root:  busted spec/sandbox_spec.lua  (lua5.4 or luajit)

local spec_dir = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")
local helpers = dofile(spec_dir .. "support/helpers.lua")
local cjson = helpers.cjson
local http = helpers.http
local urlencode = helpers.urlencode

local SPECIAL = {
  username = "späcial user+1",
  password = "p&=%+ a b/é?#;ü%41=&",
  user_key = "SPECIALKEY",
  access_token = "SPECIALTOKEN",
}
local USER = helpers.DEFAULT_USER
local RECIPIENT = "+393471234567"

describe("smsend sandbox", function()
  local sb = helpers.sandbox_fixture{
    users = { USER, SPECIAL },
    session_ttl = 300,
  }

  local function login(kind)
    local key, secret = helpers.login(sb.base_url, nil, nil, kind)
    assert.equals(USER.user_key, key)
    return secret
  end

  local function post(path, body, headers, base)
    return http("POST", (base or sb.base_url) .. path, {
      headers = headers,
      body = type(body) == "string" and body or cjson.encode(body),
    })
  end

  local function token_auth()
    return helpers.token_headers(USER.user_key, USER.access_token)
  end

  before_each(function()
    sb:reset()
  end)

  describe("launcher", function()
    it("exposes URLs, ports, CA file and logs", function()
      assert.matches("^http://127%.0%.0%.1:%d+/API/v1%.0/REST/$", sb.base_url)
      assert.equals(("http://127.0.0.1:%d/fault/drop/"):format(sb.port), sb.url_for("drop"))
      for _, kind in ipairs({ "tls", "wrong_host", "expired", "untrusted" }) do
        assert.matches("^https://127%.0%.0%.1:%d+/API/v1%.0/REST/$", sb.tls_urls[kind])
      end
      assert.truthy(helpers.read_file(sb.ca_file):find("BEGIN CERTIFICATE", 1, true))
      assert.truthy(helpers.read_file(sb.error_log))
      assert.is_true(sb:alive())
    end)

    it("fails clearly when nginx cannot start, with the error log tail", function()
      local dir = helpers.tmpdir("smsend-sandbox-fail")
      local ok, err = pcall(helpers.sandbox.start, { dir = dir, tls = false,
        extra_http_conf = "no_such_directive on;" })
      os.execute("rm -rf " .. helpers.shell_quote(dir))
      assert.is_false(ok)
      assert.matches("failed to start nginx", err, 1, true)
      assert.matches('unknown directive "no_such_directive"', err, 1, true)
    end)

    it("refuses a port that is already in use", function()
      local ok, err = pcall(helpers.sandbox.start, { port = sb.port, tls = false })
      assert.is_false(ok)
      assert.matches("port " .. sb.port .. " is already in use", err, 1, true)
    end)

    it("nginx stops by itself when the launching process dies", function()
      local dir = helpers.tmpdir("smsend-sandbox-orphan")
      local script = ([[
        package.path = %q .. "/?.lua;" .. package.path
        local sb = dofile(%q).start{ dir = %q, tls = false }
        io.write(sb.pid, "\n")
      ]]):format(helpers.repo_root, helpers.repo_root .. "/sandbox/launch.lua", dir)
      local f = assert(io.popen(helpers.lua_interpreter() .. " -e "
        .. helpers.shell_quote(script) .. " 2>&1"))
      local out = f:read("*a")
      f:close()
      local pid = tonumber(out:match("^(%d+)"))
      assert.is_number(pid, out)
      local deadline = helpers.gettime() + 5
      while helpers.sandbox.pid_alive(pid) and helpers.gettime() < deadline do
        helpers.sleep(0.05)
      end
      local alive = helpers.sandbox.pid_alive(pid)
      if alive then os.execute("kill -9 " .. pid) end
      os.execute("rm -rf " .. helpers.shell_quote(dir))
      assert.is_false(alive)
    end)
  end)

  describe("login and token", function()
    it("login answers USER_KEY;SESSION_KEY as text/plain, a new key each time", function()
      local url = sb.base_url .. "login?username=sandbox&password=sandbox-pass"
      local r1, r2 = http("GET", url), http("GET", url)
      assert.equals(200, r1.status)
      assert.matches("^text/plain", r1.headers["content-type"])
      local k1, s1 = r1.body:match("^(SBXUSER);(%x+)$")
      local _, s2 = r2.body:match("^(SBXUSER);(%x+)$")
      assert.equals("SBXUSER", k1)
      assert.equals(32, #s1)
      assert.not_equals(s1, s2)
    end)

    it("token answers USER_KEY;ACCESS_TOKEN usable for authentication", function()
      local token = login("token")
      local r = http("GET", sb.base_url .. "checksession",
        { headers = helpers.token_headers(USER.user_key, token) })
      assert.equals(200, r.status)
      assert.equals("true", r.body)
    end)

    it("wrong credentials → 404, missing parameter → 400", function()
      assert.equals(404, http("GET", sb.base_url .. "login?username=sandbox&password=nope").status)
      assert.equals(404, http("GET", sb.base_url .. "login?username=ghost&password=sandbox-pass").status)
      assert.equals(404, http("GET", sb.base_url .. "token?username=sandbox&password=x").status)
      assert.equals(400, http("GET", sb.base_url .. "login?username=sandbox").status)
      assert.equals(400, http("GET", sb.base_url .. "login?password=sandbox-pass").status)
      assert.equals(400, http("GET", sb.base_url .. "token").status)
    end)

    it("decodes URL-encoded special characters in username and password", function()
      local key, secret = helpers.login(sb.base_url, SPECIAL.username, SPECIAL.password)
      assert.equals("SPECIALKEY", key)
      assert.matches("^%x+$", secret)
      -- '+' in a query means space: the undecoded password must not match
      local wrong = sb.base_url .. "login?username=" .. urlencode(SPECIAL.username)
        .. "&password=" .. urlencode(SPECIAL.password):gsub("%%2B", "+")
      assert.equals(404, http("GET", wrong).status)
      local reqs = sb:requests()
      assert.equals(SPECIAL.password, reqs[1].query.password)
      assert.equals(SPECIAL.username, reqs[1].query.username)
    end)
  end)

  describe("authentication", function()
    it("401 without auth headers", function()
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT }).status)
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT },
        { user_key = USER.user_key }).status)
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT },
        { Access_token = USER.access_token }).status)
      assert.equals(401, http("GET", sb.base_url .. "checksession").status)
    end)

    it("404 for an unknown user_key", function()
      local r = post("2fa/request", { recipient = RECIPIENT },
        helpers.token_headers("NOSUCHKEY", USER.access_token))
      assert.equals(404, r.status)
    end)

    it("401 for a wrong token or session key, or one of another user", function()
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT },
        helpers.token_headers(USER.user_key, "WRONGTOKEN")).status)
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT },
        helpers.session_headers(USER.user_key, "deadbeef")).status)
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT },
        helpers.token_headers(USER.user_key, SPECIAL.access_token)).status)
      assert.equals(0, #sb:sms())
    end)

    it("accepts a session key and a configured access token", function()
      local s = login()
      assert.equals(200, post("2fa/request", { recipient = RECIPIENT },
        helpers.session_headers(USER.user_key, s)).status)
      assert.equals(200, post("2fa/request", { recipient = RECIPIENT }, token_auth()).status)
      assert.equals(2, #sb:sms())
    end)
  end)

  describe("sessions", function()
    it("checksession says true/false; expire_sessions invalidates keys but not tokens", function()
      local s = login()
      local h = helpers.session_headers(USER.user_key, s)
      local r = http("GET", sb.base_url .. "checksession", { headers = h })
      assert.equals(200, r.status)
      assert.equals("true", r.body)
      sb:expire_sessions()
      r = http("GET", sb.base_url .. "checksession", { headers = h })
      assert.equals(200, r.status)
      assert.equals("false", r.body)
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT }, h).status)
      assert.equals(200, post("2fa/request", { recipient = RECIPIENT }, token_auth()).status)
    end)

    it("expires after session_ttl idle seconds; calls refresh it, checksession does not", function()
      sb:config{ session_ttl = 0.6 }
      finally(function() sb:config{ session_ttl = 300 } end)
      local h = helpers.session_headers(USER.user_key, login())
      local function check()
        return http("GET", sb.base_url .. "checksession", { headers = h }).body
      end
      helpers.sleep(0.35)
      assert.equals("true", check())
      assert.equals(200, post("2fa/request", { recipient = RECIPIENT }, h).status) -- refresh
      helpers.sleep(0.35)
      assert.equals("true", check())   -- 0.7 s after login, 0.35 s after the refresh
      helpers.sleep(0.4)               -- checksession did not refresh it
      assert.equals("false", check())
      assert.equals(401, post("2fa/request", { recipient = RECIPIENT }, h).status)
    end)
  end)

  describe("2fa", function()
    local function request_pin(body)
      local r = post("2fa/request", body, token_auth())
      assert.equals(200, r.status)
      assert.same({ status = "OK" }, r.json)
      return sb:last_pin(body.recipient)
    end

    local function verify(recipient, pin)
      local r = post("2fa/verify", { recipient = recipient, pin = pin }, token_auth())
      assert.equals(200, r.status)
      return r.json
    end

    it("request sends an SMS with the PIN, shown on the console", function()
      local pin = request_pin{ recipient = RECIPIENT, senderName = "MyApp", expiry = 5,
        messageBody = "Your code is %PIN%" }
      assert.matches("^%d%d%d%d%d%d$", pin)
      local sms = sb:sms()
      assert.equals(1, #sms)
      assert.same({ recipient = RECIPIENT, sender = "MyApp", pin = pin, expiry = 5,
        text = "Your code is " .. pin }, {
        recipient = sms[1].recipient, sender = sms[1].sender, pin = sms[1].pin,
        expiry = sms[1].expiry, text = sms[1].text })
      local line = "SMS to " .. RECIPIENT .. " from MyApp: Your code is " .. pin
      assert.truthy(helpers.read_file(sb.console_file):find(line, 1, true))
      helpers.sleep(0.05) -- the error log line is written from a timer
      assert.truthy(sb:read_error_log():find(line, 1, true))
    end)

    it("appends the PIN when messageBody has no %PIN%, defaults expiry to 60", function()
      local pin = request_pin{ recipient = "00393471234567", messageBody = "Code:" }
      local sms = sb:sms()[1]
      assert.equals("Code: " .. pin, sms.text)
      assert.equals(60, sms.expiry)
      -- 00 and + prefixes are the same number
      assert.equals(pin, sb:last_pin("+393471234567"))
    end)

    it("verify: right PIN → OK and consumed", function()
      local pin = request_pin{ recipient = RECIPIENT }
      assert.same({ status = "OK" }, verify(RECIPIENT, pin))
      local again = verify(RECIPIENT, pin)
      assert.equals("ERROR", again.status)
      assert.equals(0, again.triesRemaining)
      assert.is_string(again.error)
    end)

    it("verify: wrong PINs count down 3 tries, then the PIN is void", function()
      local pin = request_pin{ recipient = RECIPIENT }
      local wrong = pin == "000000" and "111111" or "000000"
      assert.same({ status = "ERROR", error = "Wrong PIN", triesRemaining = 2 }, verify(RECIPIENT, wrong))
      assert.same({ status = "ERROR", error = "Wrong PIN", triesRemaining = 1 }, verify(RECIPIENT, wrong))
      assert.same({ status = "ERROR", error = "Wrong PIN", triesRemaining = 0 }, verify(RECIPIENT, wrong))
      local void = verify(RECIPIENT, pin)
      assert.equals("ERROR", void.status)
      assert.equals(0, void.triesRemaining)
      assert.matches("void", void.error)
    end)

    it("a new request replaces the old PIN and resets the tries", function()
      local old = request_pin{ recipient = RECIPIENT }
      verify(RECIPIENT, old == "000000" and "111111" or "000000")
      local new = request_pin{ recipient = RECIPIENT }
      if new ~= old then
        assert.equals(2, verify(RECIPIENT, old).triesRemaining)
      end
      assert.same({ status = "OK" }, verify(RECIPIENT, new))
    end)

    it("verify without a pending PIN, or with an expired one", function()
      local none = verify("+391111111111", "123456")
      assert.equals("ERROR", none.status)
      assert.equals(0, none.triesRemaining)
      local pin = request_pin{ recipient = RECIPIENT, expiry = 1 }
      assert.equals(1, sb:expire_pins().expired)
      local expired = verify(RECIPIENT, pin)
      assert.equals("ERROR", expired.status)
      assert.equals(0, expired.triesRemaining)
      assert.matches("expired", expired.error)
    end)

    it("PINs are 6 random digits", function()
      local seen = {}
      for _ = 1, 8 do
        seen[request_pin{ recipient = RECIPIENT }] = true
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.is_true(n >= 7)
    end)

    it("rejects invalid request bodies with 400 and a JSON error", function()
      local bad = {
        "not json", "[]", '"x"', "{}",
        { recipient = "3471234567" }, { recipient = "+39347" }, { recipient = "+3934712345678901" },
        { recipient = "+39347abc4567" }, { recipient = 393471234567 },
        { recipient = RECIPIENT, senderName = "TwelveChars!" },
        { recipient = RECIPIENT, senderName = "12345678901234567" },
        { recipient = RECIPIENT, senderName = "" }, { recipient = RECIPIENT, senderName = 5 },
        { recipient = RECIPIENT, expiry = 0 }, { recipient = RECIPIENT, expiry = -5 },
        { recipient = RECIPIENT, expiry = 2.5 }, { recipient = RECIPIENT, expiry = "5" },
        { recipient = RECIPIENT, messageBody = "" }, { recipient = RECIPIENT, messageBody = 7 },
      }
      for _, body in ipairs(bad) do
        local r = post("2fa/request", body, token_auth())
        local shown = type(body) == "string" and body or cjson.encode(body)
        assert.equals(400, r.status, shown)
        assert.equals("ERROR", r.json and r.json.status, shown)
        assert.is_string(r.json.error, shown)
      end
      assert.equals(0, #sb:sms())
      -- the limits themselves are fine
      assert.equals(200, post("2fa/request", { recipient = "+123456", senderName = "ElevenChars" },
        token_auth()).status)
      assert.equals(200, post("2fa/request", { recipient = "00123456789012345",
        senderName = "1234567890123456" }, token_auth()).status)
    end)

    it("rejects invalid verify bodies with 400", function()
      for _, body in ipairs({ "{}", "[]", { recipient = RECIPIENT }, { pin = "123456" },
        { recipient = RECIPIENT, pin = 123456 }, { recipient = 5, pin = "123456" } }) do
        local r = post("2fa/verify", body, token_auth())
        assert.equals(400, r.status, type(body) == "string" and body or cjson.encode(body))
        assert.equals("ERROR", r.json.status)
      end
    end)
  end)

  describe("recording", function()
    it("records method, path, uri, decoded query, headers, body and connection", function()
      local body = '{"recipient":"+393471234567","senderName":"MyApp"}'
      post("2fa/request", body, token_auth())
      http("GET", sb.base_url .. "login?username=sandbox&password=a%26b")
      local reqs = sb:requests()
      assert.equals(2, #reqs)
      local r = reqs[1]
      assert.equals("POST", r.method)
      assert.equals("2fa/request", r.path)
      assert.equals("/API/v1.0/REST/2fa/request", r.uri)
      assert.equals(body, r.body)
      assert.equals("SBXUSER", r.headers.user_key)
      assert.equals("SBXTOKEN", r.headers.access_token)
      assert.equals(tostring(#body), r.headers["content-length"])
      assert.is_number(r.connection)
      assert.equals(1, r.connection_requests)
      assert.is_nil(r.fault)
      assert.equals("login", reqs[2].path)
      assert.equals("/API/v1.0/REST/login?username=sandbox&password=a%26b", reqs[2].uri)
      assert.same({ username = "sandbox", password = "a&b" }, reqs[2].query)
      assert.not_equals(r.connection, reqs[2].connection)
    end)

    it("shows keep-alive: several calls on one connection", function()
      local req = "GET /API/v1.0/REST/checksession HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        .. "user_key: SBXUSER\r\nAccess_token: SBXTOKEN\r\n\r\n"
      local resps = helpers.raw_keepalive(sb.port, { req, req, req })
      for _, resp in ipairs(resps) do
        assert.equals(200, resp.status)
        assert.equals("true", resp.body)
      end
      local reqs = sb:requests()
      assert.equals(3, #reqs)
      assert.equals(reqs[1].connection, reqs[2].connection)
      assert.equals(reqs[1].connection, reqs[3].connection)
      assert.same({ 1, 2, 3 }, { reqs[1].connection_requests, reqs[2].connection_requests,
        reqs[3].connection_requests })
    end)

    it("empty lists are [] and control calls are not recorded", function()
      sb:sms()
      sb:last_pin(RECIPIENT)
      local r = http("GET", ("http://127.0.0.1:%d/_sandbox/requests"):format(sb.port))
      assert.equals(200, r.status)
      assert.equals("[]", r.body)
      r = http("GET", ("http://127.0.0.1:%d/_sandbox/sms"):format(sb.port))
      assert.equals("[]", r.body)
      assert.is_nil(sb:last_pin(RECIPIENT))
    end)

    it("reset clears requests, SMS, PINs and sessions", function()
      local h = helpers.session_headers(USER.user_key, login())
      post("2fa/request", { recipient = RECIPIENT }, h)
      assert.truthy(sb:last_pin(RECIPIENT))
      sb:reset()
      assert.same({}, sb:requests())
      assert.same({}, sb:sms())
      assert.is_nil(sb:last_pin(RECIPIENT))
      assert.equals("false", http("GET", sb.base_url .. "checksession", { headers = h }).body)
    end)
  end)

  describe("fault modes", function()
    local function fault_post(name, path, timeout)
      return http("POST", sb.url_for(name) .. (path or "2fa/request"), {
        headers = token_auth(), body = '{"recipient":"+393471234567"}', timeout = timeout,
      })
    end

    it("status-503 answers 503 with a JSON error and is recorded with its fault", function()
      local r = fault_post("status-503")
      assert.equals(503, r.status)
      assert.matches("^application/json", r.headers["content-type"])
      assert.same({ status = "ERROR", error = "injected 503" }, r.json)
      local reqs = sb:requests()
      assert.equals(1, #reqs)
      assert.equals("status-503", reqs[1].fault)
      assert.equals("2fa/request", reqs[1].path)
      assert.equals(0, #sb:sms())
    end)

    it("retry-after-7 and ratelimit answer 429, with and without Retry-After", function()
      local r = fault_post("retry-after-7")
      assert.equals(429, r.status)
      assert.equals("7", r.headers["retry-after"])
      r = fault_post("ratelimit")
      assert.equals(429, r.status)
      assert.is_nil(r.headers["retry-after"])
    end)

    it("drop closes without an answer", function()
      local r = fault_post("drop")
      assert.is_nil(r.status)
      assert.matches("closed", r.err)
      assert.equals("drop", sb:requests()[1].fault)
    end)

    it("cut, badlen and garbage break the HTTP exchange", function()
      local function raw(name)
        return helpers.raw_exchange(sb.port, "GET /fault/" .. name .. "/2fa/request HTTP/1.1\r\n"
          .. "Host: 127.0.0.1\r\nuser_key: SBXUSER\r\nAccess_token: SBXTOKEN\r\n\r\n")
      end
      local function split(data)
        local head, body = data:match("^(.-\r\n)\r\n(.*)$")
        return head, body
      end
      local head, body = split(raw("cut"))
      assert.matches("^HTTP/1%.1 200", head)
      assert.matches("Content%-Length: 100\r\n", head)
      assert.equals(10, #body)
      head, body = split(raw("badlen"))
      assert.matches("Content%-Length: 50\r\n", head)
      assert.equals(20, #body)
      local garbage = raw("garbage")
      assert.equals("SSH-2.0-garbage\r\n\r\n", garbage:sub(1, 19))
      assert.is_true(#garbage > 19)
      -- and through an HTTP client
      assert.is_nil(fault_post("cut").status)
      assert.is_nil(fault_post("badlen").status)
      assert.equals(5, #sb:requests())
    end)

    it("hang never answers (client timeout fires)", function()
      local t0 = helpers.gettime()
      local r = fault_post("hang", nil, 0.3)
      assert.is_nil(r.status)
      assert.matches("timeout", r.err)
      assert.is_true(helpers.gettime() - t0 < 2)
    end)

    it("big sends an 8 MiB body", function()
      local r = fault_post("big")
      assert.equals(200, r.status)
      assert.equals(8 * 1024 * 1024, #r.body)
      assert.equals(tostring(8 * 1024 * 1024), r.headers["content-length"])
    end)

    it("redirect answers 302; the target is recorded only when followed", function()
      local r = fault_post("redirect")
      assert.equals(302, r.status)
      local location = r.headers["location"]
      assert.equals(("http://127.0.0.1:%d/API/v1.0/REST/redirected"):format(sb.port), location)
      local reqs = sb:requests()
      assert.equals(1, #reqs)
      http("GET", location)
      reqs = sb:requests()
      assert.equals(2, #reqs)
      assert.equals("redirected", reqs[2].path)
    end)

    it("slow-300 delays then behaves normally", function()
      local t0 = helpers.gettime()
      local r = fault_post("slow-300")
      assert.is_true(helpers.gettime() - t0 >= 0.29)
      assert.equals(200, r.status)
      assert.same({ status = "OK" }, r.json)
      assert.equals(1, #sb:sms())
      r = http("POST", sb.url_for("slow-10") .. "2fa/request", { body = "{}" })
      assert.equals(401, r.status)
    end)

    it("config drop_next drops the next gateway request only, on a kept-alive connection", function()
      local req = "GET /API/v1.0/REST/checksession HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        .. "user_key: SBXUSER\r\nAccess_token: SBXTOKEN\r\n\r\n"
      local socket = require "socket"
      local c = assert(socket.tcp())
      c:settimeout(5)
      assert(c:connect("127.0.0.1", sb.port))
      assert(c:send(req))
      assert.matches("^HTTP/1%.1 200", c:receive("*l"))
      local len
      repeat
        local h = assert(c:receive("*l"))
        len = len or tonumber(h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)"))
      until h == ""
      assert.equals("true", c:receive(len))
      assert.equals(1, sb:config{ drop_next = true }.drop_next)
      assert(c:send(req))
      local data, err, partial = c:receive("*a")   -- closed without an answer
      c:close()
      assert.equals("", data or partial)
      assert.not_equals("timeout", err)
      local reqs = sb:requests()
      assert.equals("drop_next", reqs[#reqs].fault)
      assert.equals(0, sb:config().drop_next)
      assert.equals(200, http("GET", sb.base_url .. "checksession", { headers = token_auth() }).status)
    end)

    it("answers absolute-form requests, as a proxy would get them", function()
      local resp = helpers.raw_keepalive(sb.port, {
        "GET http://127.0.0.1:1/API/v1.0/REST/checksession HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"
          .. "user_key: SBXUSER\r\nAccess_token: SBXTOKEN\r\n\r\n" })
      assert.equals(200, resp[1].status)
      assert.equals("true", resp[1].body)
      assert.equals("checksession", sb:requests()[1].path)
    end)

    it("notjson, empty, badjson and login-garbage bodies", function()
      local r = fault_post("notjson")
      assert.same({ 200, "OK" }, { r.status, r.body })
      r = fault_post("empty")
      assert.same({ 200, "" }, { r.status, r.body })
      r = fault_post("badjson")
      assert.same({ 200, '{"status":"OK"' }, { r.status, r.body })
      r = http("GET", sb.url_for("login-garbage") .. "login?username=sandbox&password=sandbox-pass")
      assert.equals(200, r.status)
      assert.is_nil(r.body:match("^[^;]+;[^;]+$"))
      assert.equals(200, fault_post("login-garbage").status)   -- other endpoints work
    end)
  end)

  describe("TLS", function()
    it("trusted with the test CA; wrong host, expired and untrusted are rejected", function()
      local path = "checksession"
      if helpers.command_exists("curl") then
        local rc, code = helpers.curl_tls(sb.tls_urls.tls .. "login?username=sandbox&password=sandbox-pass", sb.ca_file)
        assert.same({ 0, 200 }, { rc, code })
        for _, kind in ipairs({ "wrong_host", "expired", "untrusted" }) do
          rc = helpers.curl_tls(sb.tls_urls[kind] .. path, sb.ca_file)
          assert.equals(60, rc, kind)   -- CURLE_PEER_FAILED_VERIFICATION
        end
        rc = helpers.curl_tls(sb.tls_urls.tls .. path, nil)   -- system CAs only
        assert.equals(60, rc)
      end
      -- LuaSec (CA-based verification; it does not check host names)
      local ok_https, https = pcall(require, "ssl.https")
      if ok_https then
        local params = { cafile = sb.ca_file, verify = "peer", mode = "client", protocol = "any" }
        local function get(url)
          local chunks = {}
          local req = { url = url, sink = require("ltn12").sink.table(chunks),
            headers = helpers.token_headers(USER.user_key, USER.access_token) }
          for k, v in pairs(params) do req[k] = v end
          local one, code = https.request(req)
          return one and code, table.concat(chunks)
        end
        local code, body = get(sb.tls_urls.tls .. path)
        assert.same({ 200, "true" }, { code, body })
        assert.is_falsy(get(sb.tls_urls.untrusted .. path))
        assert.is_falsy(get(sb.tls_urls.expired .. path))
      end
      local dates = io.popen("openssl x509 -noout -dates -in "
        .. helpers.shell_quote(sb.ca_file:gsub("ca%.crt$", "expired.crt"))):read("*a")
      assert.matches("notAfter=Jan  1 00:00:00 2021 GMT", dates, 1, true)
    end)
  end)

  describe("logs", function()
    it("never contain credentials, session keys or tokens", function()
      local s = login()
      local token = login("token")
      helpers.login(sb.base_url, SPECIAL.username, SPECIAL.password)
      http("GET", sb.base_url .. "login?username=sandbox&password=wrong-Secret-42")
      http("GET", sb.url_for("slow-5") .. "login?username=sandbox&password=sandbox-pass")
      http("GET", sb.url_for("drop") .. "token?username=sandbox&password=sandbox-pass")
      http("GET", sb.url_for("hang") .. "login?username=sandbox&password=hang-Secret-7", { timeout = 0.2 })
      post("2fa/request", { recipient = RECIPIENT }, helpers.session_headers(USER.user_key, s))
      post("2fa/request", { recipient = RECIPIENT }, helpers.token_headers(USER.user_key, token))
      helpers.sleep(0.1)
      local logs = sb:read_error_log()
        .. (helpers.read_file(sb.dir .. "/logs/access.log") or "")
        .. (helpers.read_file(sb.console_file) or "")
      assert.truthy(logs:find("SMS to " .. RECIPIENT, 1, true))
      for _, secret in ipairs({ USER.password, "wrong-Secret-42", "hang-Secret-7",
        urlencode(SPECIAL.password), SPECIAL.password, USER.user_key, USER.access_token,
        SPECIAL.user_key, s, token }) do
        assert.is_nil(logs:find(secret, 1, true), "log contains " .. secret)
      end
    end)
  end)
end)
