-- cli_spec.lua — bin/smsend against the sandbox: each exit status (0 done, 1 a definite no, 2 usage
-- or configuration, 3 failed with nothing sent, 4 outcome unknown) from fault modes and a dead port,
-- one JSON object on stdout with --json for every outcome, login, check-session logging in first,
-- the PIN from stdin, recipients normalised, --opt=value, and the CLI and sandbox installed under a
-- temporary prefix. The CLI runs under lua5.4 (its #! line) whichever interpreter runs this file.
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
local cjson = require "cjson"

local q = util.sh_quote
local BIN = helpers.repo_root .. "/bin/smsend"
local UK, TOK = "SBXUSER", "SBXTOKEN"
local USER, PASS = "sandbox", "sandbox-pass"
local RCPT = "+393471234567"
local CLEAN_ENV = "env -u SMSEND_USER_KEY -u SMSEND_ACCESS_TOKEN -u SMSEND_SESSION_KEY -u SMSEND_USERNAME"
  .. " -u SMSEND_PASSWORD -u SMSEND_BASE_URL -u SMSEND_CAINFO -u SMSEND_CPATH"

-- Runs the CLI (bin, or an installed one) from / → stdout, stderr, exit status.
local function run(bin, args, env, stdin)
  local errfile = os.tmpname()
  local cmd = CLEAN_ENV
  for k, v in pairs(env or {}) do cmd = cmd .. " " .. k .. "=" .. q(v) end
  cmd = cmd .. " " .. q(bin) .. " " .. args .. " 2>" .. q(errfile)
  cmd = "cd / && " .. (stdin and ("printf %s " .. q(stdin) .. " | " .. cmd) or (cmd .. " </dev/null"))
  local p = assert(io.popen(cmd .. '; echo "exit=$?"'))
  local out = p:read("*a")
  p:close()
  local err = helpers.read_file(errfile) or ""
  os.remove(errfile)
  local code = tonumber(out:match("exit=(%d+)\n$"))
  return out:gsub("exit=%d+\n$", ""), err, code
end

local function cli(args, env, stdin) return run(BIN, args, env, stdin) end

-- Runs an smsend-sandbox command in the background (output in log) until it says it waits for SMS,
-- calls use(exports) with the variables it says to export, stops it with Ctrl-C (SIGINT) and
-- returns all it printed.
local function sandbox_cli(bin, log, use)
  local _, started = util.sh("cd / && " .. CLEAN_ENV .. " " .. q(bin) .. " >" .. q(log) .. " 2>&1 </dev/null & echo $!")
  local pid = assert(started:match("%d+"))
  local text = ""
  for _ = 1, 200 do
    text = helpers.read_file(log) or ""
    if text:find("Waiting for SMS") or text:find("smsend%-sandbox: ") then break end
    os.execute("sleep 0.05")
  end
  local exports = {}
  for k, v in text:gmatch("\nexport (SMSEND_[%u_]+)=(%S+)") do exports[k] = v:gsub("^'(.*)'$", "%1") end
  local ok, err = pcall(use, exports, text)
  os.execute("sleep 0.3") -- the console is followed every 0.2 s
  os.execute("kill -INT " .. pid)
  for _ = 1, 100 do
    if not helpers.sandbox.pid_alive(pid) then break end
    os.execute("sleep 0.05")
  end
  if helpers.sandbox.pid_alive(pid) then os.execute("kill -TERM " .. pid) end
  text = helpers.read_file(log) or ""
  assert(ok, err)
  assert.matches("Waiting for SMS", text)
  assert.matches("\nsmsend sandbox stopped\n$", text)
  return text
end

-- With --json: exactly one JSON object on stdout (one line), nothing on stderr; returns it decoded.
local function json_of(out, err, what)
  assert.equal("", err, what .. ": stderr should be empty with --json")
  assert.matches("^{[^\n]*}\n$", out, what .. ": not exactly one JSON line")
  local ok, v = pcall(cjson.decode, out)
  assert.is_true(ok, what .. ": not JSON: " .. out)
  assert.equal("table", type(v))
  return v
end

-- Runs args with and without --json and checks the exit status of both and the JSON object; returns
-- the plain run's stdout and stderr, the decoded object and the JSON text.
local function expect(code, args, env, stdin)
  local out, err, got = cli(args, env, stdin)
  assert.equal(code, got, ("smsend %s → %s\nstdout: %s\nstderr: %s"):format(args, tostring(got), out, err))
  local jout, jerr, jgot = cli("--json " .. args, env, stdin)
  local st = json_of(jout, jerr, "smsend --json " .. args)
  assert.equal(code, jgot, "smsend --json " .. args)
  assert.equal(code, st.exit_code, "exit_code field of smsend --json " .. args)
  assert.equal(code == 0 or (code == 1 and st.valid == false), st.ok, "ok field of smsend --json " .. args)
  return out, err, st, jout
end

describe("bin/smsend", function()
  local sb = helpers.sandbox_fixture({ users = {
      { username = USER, password = PASS, user_key = UK, access_token = TOK },
    } }, { reset_each = true })

  local function token_env(base_url)
    return { SMSEND_USER_KEY = UK, SMSEND_ACCESS_TOKEN = TOK, SMSEND_BASE_URL = base_url or sb.base_url }
  end
  local function login_env(password)
    return { SMSEND_USERNAME = USER, SMSEND_PASSWORD = password or PASS, SMSEND_BASE_URL = sb.base_url }
  end
  local function paths() return sb:paths() end

  describe("exit status 0", function()
    it("requests a PIN for a number written with spaces and says the number it sent", function()
      local out, _, st = expect(0, "request-pin '+39 347 123 4567' --sender=MyApp --expiry=5 --message 'Code %PIN%'",
                                token_env())
      assert.equal("PIN sent to +393471234567", out:match("^(.-) %("))
      assert.equal(RCPT, st.recipient)
      assert.equal(200, st.status)
      local wire = sb:requests()
      assert.equal(2, #wire)
      for _, r in ipairs(wire) do
        assert.equal('{"recipient":"+393471234567","senderName":"MyApp","expiry":5,"messageBody":"Code %PIN%"}', r.body)
      end
    end)

    it("verifies a PIN read from standard input, the number in another spelling", function()
      cli("request-pin " .. RCPT, token_env())
      local out, err, code = cli("verify-pin '0039 347-123-4567' -", token_env(), sb:last_pin(RCPT) .. "\n")
      assert.equal(0, code, err)
      assert.matches("^PIN verified for %+393471234567 %(HTTP 200", out)
      assert.equal(("{\"recipient\":\"%s\",\"pin\":\"%s\"}"):format(RCPT, sb:sms()[1].pin), sb:requests()[2].body)
    end)

    it("takes the password and then the PIN from standard input", function()
      cli("request-pin " .. RCPT, token_env())
      local out, err, code = cli("--password-stdin --username " .. USER .. " verify-pin " .. RCPT .. " -",
                                 { SMSEND_BASE_URL = sb.base_url }, PASS .. "\n" .. sb:last_pin(RCPT) .. "\r\n")
      assert.equal(0, code, err)
      assert.matches("PIN verified", out)
      assert.equal("2fa/request login 2fa/verify", paths())
    end)

    it("accepts --opt=value for every option that takes one", function()
      local out, err, code = cli("--base-url=" .. q(sb.base_url) .. " --timeout=5 --auth=token --username=" .. USER
                                 .. " --password-stdin --cainfo=" .. q(sb.ca_file) .. " request-pin --sender=X --expiry=7 --message=hi " .. RCPT,
                                 {}, PASS .. "\n")
      assert.equal(0, code, err)
      assert.matches("PIN sent", out)
      assert.equal("token 2fa/request", paths())
      assert.equal('{"recipient":"+393471234567","senderName":"X","expiry":7,"messageBody":"hi"}', sb:requests()[2].body)
    end)

    it("trusts the CA file in SMSEND_CAINFO (as the sandbox prints it)", function()
      local env = token_env(sb.tls_urls.tls)
      env.SMSEND_CAINFO = sb.ca_file
      expect(0, "request-pin " .. RCPT, env)
      assert.equal("https", sb:requests()[1].scheme)
    end)
  end)

  describe("exit status 1", function()
    it("wrong PIN, with the tries left", function()
      cli("request-pin " .. RCPT, token_env())
      local wrong = sb:last_pin(RCPT) == "000000" and "111111" or "000000"
      local _, err, st = expect(1, "verify-pin " .. RCPT .. " " .. wrong, token_env())
      assert.equal("smsend: wrong_pin: Wrong PIN (2 tries remaining)\n", err)
      assert.equal("wrong_pin", st.error)
      assert.equal(1, st.tries_remaining)
    end)

    it("refused credentials, an unknown user_key, a 400 and a refused login", function()
      local env = token_env()
      env.SMSEND_ACCESS_TOKEN = "WRONG"
      assert.equal("unauthorized", select(3, expect(1, "request-pin " .. RCPT, env)).error)
      env = token_env()
      env.SMSEND_USER_KEY = "NOBODY"
      assert.equal("not_found", select(3, expect(1, "request-pin " .. RCPT, env)).error)
      assert.equal("bad_request", select(3, expect(1, "request-pin " .. RCPT, token_env(sb.url_for("status-400")))).error)
      assert.equal("login_failed", select(3, expect(1, "login", login_env("wrong"))).error)
    end)

    it("a session that is not valid", function()
      local key, session_key = helpers.login(sb.base_url, USER, PASS)
      local login = { user_key = key, session_key = session_key }
      sb:expire_sessions()
      local out, _, st = expect(1, "check-session", { SMSEND_USER_KEY = login.user_key,
                                  SMSEND_SESSION_KEY = login.session_key, SMSEND_BASE_URL = sb.base_url })
      assert.equal("session not valid", out:match("^(.-) %("))
      assert.is_true(st.ok)
      assert.is_false(st.valid)
    end)
  end)

  describe("exit status 2", function()
    it("usage errors, with nothing sent", function()
      local env = token_env()
      for _, args in ipairs{
        "", "fly-to-moon", "verify-pin " .. RCPT, "request-pin", "request-pin a b", "--bogus request-pin " .. RCPT,
        "request-pin " .. RCPT .. " --expiry 0x10", "request-pin " .. RCPT .. " --expiry 1e1",
        "request-pin " .. RCPT .. " --expiry=-5", "request-pin " .. RCPT .. " --expiry", "--timeout 0x1 login",
        "--version=1", "verify-pin " .. RCPT .. " 123456 --sender X",
        "--password " .. PASS .. " request-pin " .. RCPT, "--password=" .. PASS .. " login",
        "--access-token=" .. TOK .. " login", "--user-key " .. UK .. " login",
      } do
        local _, err, st = expect(2, args, env)
        assert.equal("usage", st.error, args)
        assert.matches("try 'smsend %-%-help'\n$", err, args)
      end
      local _, err = cli("--password " .. PASS .. " login", env)
      assert.matches("environment or standard input only", err)
      assert.is_nil(err:find(PASS, 1, true))
      _, err = cli("request-pin " .. RCPT .. " --expiry 0x10", env)
      assert.matches("whole number of minutes", err)
      assert.equal("", paths())
    end)

    it("configuration errors and refused request fields, with nothing sent", function()
      local cases = {
        { "request-pin " .. RCPT, {} },                                              -- no credentials
        { "request-pin " .. RCPT, { SMSEND_USER_KEY = UK } },
        { "--base-url ftp://example.com/ request-pin " .. RCPT, token_env() },
        { "--auth sideways --username " .. USER .. " login", login_env() },
        { "--username " .. USER .. " login", { SMSEND_BASE_URL = sb.base_url } },  -- no password
        { "--password-stdin login", { SMSEND_BASE_URL = sb.base_url }, PASS .. "\n" }, -- no username
        { "--password-stdin --username " .. USER .. " login", { SMSEND_BASE_URL = sb.base_url }, "" },
        { "verify-pin " .. RCPT .. " -", token_env(), "" },                          -- no PIN on stdin
        { "login", token_env() },                                                    -- nothing to log in with
      }
      for _, c in ipairs(cases) do
        local _, _, st = expect(2, c[1], c[2], c[3])
        assert.is_truthy(st.error == "invalid_config" or st.error == "invalid_request", c[1])
      end
      for _, r in ipairs{ "123", "+39 347", "+39 347 abc", "347 123 4567" } do
        local _, err, st = expect(2, "request-pin " .. q(r), token_env())
        assert.equal("invalid_request", st.error)
        assert.equal("recipient", st.field)
        assert.matches("^smsend: invalid_request: .*%[field recipient%]\n$", err)
      end
      assert.equal("", paths())
    end)
  end)

  describe("exit status 3", function()
    it("a dead port, a TLS failure and rate limiting: nothing was sent", function()
      local _, _, st = expect(3, "request-pin " .. RCPT, token_env("http://127.0.0.1:" .. util.closed_port() .. "/"))
      assert.equal("connect_failed", st.error)
      assert.is_true(st.retryable)
      st = select(3, expect(3, "request-pin " .. RCPT, token_env(sb.tls_urls.untrusted)))
      assert.equal("tls_failed", st.error)
      assert.equal("rate_limited", select(3, expect(3, "request-pin " .. RCPT, token_env(sb.url_for("ratelimit")))).error)
      assert.equal("2fa/request 2fa/request", paths()) -- the 429s; nothing reached the gateway otherwise
    end)

    it("says 'retry after N s' once", function()
      local _, err, st = expect(3, "request-pin " .. RCPT, token_env(sb.url_for("retry-after-9")))
      assert.equal(9, st.retry_after)
      local _, n = err:gsub("retry after 9 s", "")
      assert.equal(1, n, err)
    end)
  end)

  describe("exit status 4", function()
    it("timeout, dropped connection, server error, broken and unexpected answers: an SMS may have gone", function()
      for fault, code in pairs{ hang = "timeout", drop = "network_error", ["status-500"] = "server_error",
                                garbage = "bad_response", badjson = "bad_response", redirect = "unexpected_status" } do
        local _, err, st = expect(4, "--timeout 1 request-pin " .. RCPT, token_env(sb.url_for(fault)))
        assert.equal(code, st.error, fault)
        assert.is_false(st.retryable, fault)
        assert.matches("^smsend: " .. code .. ": ", err)
      end
    end)
  end)

  describe("login and check-session", function()
    it("login logs in and prints no key", function()
      for _, how in ipairs{ { "login", login_env() },
                            { "--password-stdin --username " .. USER .. " login", { SMSEND_BASE_URL = sb.base_url }, PASS .. "\n" },
                            { "--auth token login", login_env() } } do
        local out, err, st, json = expect(0, how[1], how[2], how[3])
        assert.matches("^logged in %(HTTP 200", out)
        for _, text in ipairs{ out, err, json } do
          assert.is_nil(text:find(string.rep("%x", 32)), text) -- the sandbox's session keys and tokens
          assert.is_nil(text:find(PASS, 1, true))
          assert.is_nil(text:find(TOK, 1, true))
        end
        assert.is_nil(st.body)
      end
      assert.equal("login login login login token token", paths())
    end)

    it("check-session logs in first with username and password, so it tests them", function()
      local out = expect(0, "check-session", login_env())
      assert.matches("^session valid %(logged in, HTTP 200", out)
      assert.equal("login checksession login checksession", paths())
      local _, err = expect(1, "check-session", login_env("wrong"))
      assert.matches("^smsend: login_failed: ", err)
    end)

    it("check-session with a session key does not log in", function()
      local key, session_key = helpers.login(sb.base_url, USER, PASS)
      local login = { user_key = key, session_key = session_key }
      local env = login_env()
      env.SMSEND_USER_KEY, env.SMSEND_SESSION_KEY = login.user_key, login.session_key
      local out = expect(0, "check-session", env)
      assert.matches("^session valid %(HTTP 200", out)
      assert.equal("login checksession checksession", paths()) -- helpers.login, then no login by the CLI
    end)
  end)

  it("--help documents the exit statuses, --opt=value and the PIN on standard input", function()
    local out, err, code = cli("--help")
    assert.equal(0, code)
    assert.equal("", err)
    for _, text in ipairs{ "verify-pin RECIPIENT PIN|-", "--opt VALUE or --opt=VALUE", "standard input",
                           "\n  0  done", "\n  1  a definite no", "\n  2  usage or configuration error",
                           "\n  3  failed and nothing was sent", "\n  4  outcome unknown", "SMSEND_CAINFO" } do
      assert.is_truthy(out:find(text, 1, true), text)
    end
    local jout, jerr, jcode = cli("--help --json")
    assert.equal(0, jcode)
    assert.equal(out, json_of(jout, jerr, "--help --json").message)
  end)
end)

describe("bin/smsend-sandbox", function()
  it("prints the settings as export lines (SMSEND_CAINFO for its CA) that bin/smsend works with", function()
    local log = os.tmpname()
    local rout, rerr, rcode, ca
    local text = sandbox_cli(helpers.repo_root .. "/bin/smsend-sandbox", log, function(env, shown)
      local names = {}
      for name in pairs(env) do names[#names + 1] = name end
      table.sort(names)
      assert.same({ "SMSEND_ACCESS_TOKEN", "SMSEND_BASE_URL", "SMSEND_CAINFO", "SMSEND_USER_KEY" }, names)
      ca = helpers.read_file(env.SMSEND_CAINFO)
      -- the HTTPS server it shows, trusted through SMSEND_CAINFO alone
      env.SMSEND_BASE_URL = assert(shown:match("\n  HTTPS +(https://%S+)"))
      rout, rerr, rcode = run(BIN, "request-pin 0039-347-123-4567", env)
    end)
    os.remove(log)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-", ca)
    assert.is_nil(text:find("SMSEND_CA_FILE", 1, true))
    assert.equal(0, rcode, rerr)
    assert.matches("PIN sent to %+393471234567", rout)
    assert.matches("SMS to %+393471234567 from SANDBOX: Your verification code is %d%d%d%d%d%d\n", text)
  end)
end)

describe("installed under a prefix", function()
  local is_jit = type(jit) == "table"
  local luav = is_jit and "5.1" or _VERSION:match("%d+%.%d+")

  it("PREFIX/bin/smsend finds the installed module, smsend-sandbox and smsend.sandbox work, uninstall removes them", function()
    local prefix = helpers.tmpdir("smsend-cli-install")
    local ok, out = util.sh("make --no-print-directory install PREFIX=" .. q(prefix))
    assert.is_true(ok, out)
    local installed = { "/bin/smsend", "/bin/smsend-sandbox", "/lib/lua/5.4/smsend.so",
                        "/share/lua/5.4/smsend/sandbox.lua", "/share/lua/5.4/smsend/sandbox/gateway.lua",
                        "/share/lua/5.4/smsend/sandbox/control.lua", "/share/lua/5.4/smsend/sandbox/state.lua",
                        "/share/lua/5.1/smsend/sandbox.lua", "/share/lua/5.1/smsend/sandbox/gateway.lua" }
    for _, f in ipairs(installed) do assert.is_truthy(io.open(prefix .. f), f .. " was not installed") end

    -- the installed CLI, run from elsewhere with no Lua path set, loads the installed module
    local bin = prefix .. "/bin/smsend"
    local vout, verr, vcode = run(bin, "--version")
    assert.equal(0, vcode, verr)
    assert.matches("%(module " .. prefix:gsub("%p", "%%%0") .. "/bin/%.%./lib/lua/5%.4/smsend%.so%)\n$", vout)

    -- the installed smsend-sandbox runs and prints what to export; the installed CLI uses it
    local rout, rerr, rcode
    local text = sandbox_cli(prefix .. "/bin/smsend-sandbox", prefix .. "/sandbox.out", function(env)
      assert.is_truthy(env.SMSEND_CAINFO)
      rout, rerr, rcode = run(bin, "request-pin '+39 347 123 4567'", env)
    end)
    assert.equal(0, rcode, rerr)
    assert.matches("PIN sent to %+393471234567", rout)
    assert.matches("SMS to %+393471234567 from SANDBOX", text)

    -- require "smsend.sandbox" from the prefix, under the interpreter running this spec
    local lpath = prefix .. "/share/lua/" .. luav .. "/?.lua"
    local cpath = prefix .. "/lib/lua/" .. luav .. "/?.so"
    local result, rok = util.run_lua([[
      package.path = os.getenv("LPATH") .. ";" .. package.path
      package.cpath = os.getenv("CPATH_") .. ";" .. package.cpath
      local sandbox = require "smsend.sandbox"
      local smsend = require "smsend"
      local sb = sandbox.start{ tls = true }
      local st = smsend.new(sb:options()):request_pin{ recipient = "+393471234567" }
      print(package.searchpath("smsend.sandbox", package.path), st.ok, sb:last_pin("+39 347 1234567") ~= nil)
      sb:stop()
    ]], { LPATH = lpath, CPATH_ = cpath, SMSEND_CPATH = "" })
    assert.is_truthy(rok, result)
    assert.equal(prefix .. "/share/lua/" .. luav .. "/smsend/sandbox.lua\ttrue\ttrue", result)

    ok, out = util.sh("make --no-print-directory uninstall PREFIX=" .. q(prefix))
    assert.is_true(ok, out)
    for _, f in ipairs(installed) do assert.is_nil(io.open(prefix .. f), f .. " was left behind") end
    local _, left = util.sh("test -e " .. q(prefix .. "/share/lua/5.4/smsend/sandbox") .. " && echo left || echo gone")
    assert.equal("gone\n", left, "a sandbox directory was left behind")
    os.execute("rm -rf " .. q(prefix))
  end)
end)
