-- examples_spec.lua — the examples in examples/plain, examples/config and examples/embed run
-- against the sandbox as a user would run them: a child process with the credentials in its
-- environment, typing a wrong PIN and then the right one on its standard input.
--
-- How the right PIN gets typed: the child is started with io.popen(cmd, "w"), so the spec holds the
-- write end of its stdin. The child requests the PIN and blocks reading stdin; the spec polls
-- sb:last_pin until the PIN exists, then writes the answers and closes the pipe. The child's output
-- goes to a file and its exit status to another (LuaJIT's popen close does not return it).
-- The examples always run with lua5.4 or the C hosts (Lua 5.4 and LuaJIT), whichever interpreter
-- runs busted.
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
local cjson = helpers.cjson
local q = util.sh_quote

local ROOT = helpers.repo_root
local TYPED, PHONE = "+39 347 123 4567", "+393471234567"

-- Variables of the runner that would change what the child does; the child gets only ours.
local CLEAN_ENV = "env -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_PATH -u LUA_PATH_5_4 -u LUA_INIT -u LUA_INIT_5_4"
  .. " -u SMSEND_USER_KEY -u SMSEND_ACCESS_TOKEN -u SMSEND_SESSION_KEY -u SMSEND_USERNAME"
  .. " -u SMSEND_PASSWORD -u SMSEND_BASE_URL -u http_proxy -u HTTP_PROXY -u https_proxy"
  .. " -u HTTPS_PROXY -u all_proxy -u ALL_PROXY"

-- PINs that are surely wrong: never equal to the real one.
local function wrong_pins(pin, n)
  local out = {}
  for d = 0, 9 do
    local p = string.rep(tostring(d), 6)
    if p ~= pin and #out < n then out[#out + 1] = p end
  end
  return out
end

-- os.execute's result differs: true (Lua 5.4) or 0 (LuaJIT) on success.
local function sh(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

local function count(s, plain)
  local n, i = 0, 1
  while true do
    local a, b = s:find(plain, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

describe("examples", function()
  local sb, tmp, seq = nil, nil, 0

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    tmp = helpers.tmpdir("smsend-examples")
  end)

  teardown(function()
    if sb then sb:stop() end
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  before_each(function()
    sb:reset()
  end)

  local function token_env()
    return { SMSEND_USER_KEY = "SBXUSER", SMSEND_ACCESS_TOKEN = "SBXTOKEN", SMSEND_BASE_URL = sb.base_url }
  end

  -- Runs argv (a list) from the repository root with env (a table of variables). `input` is what
  -- gets typed: a string, written at once, or function(pin) → string, called once the sandbox has
  -- sent a PIN to PHONE (pin is nil if none came within 5 s). Returns output (stdout and stderr),
  -- exit status and the PIN that was sent.
  local function run(argv, env, input)
    seq = seq + 1
    local out_file, rc_file = ("%s/out.%d"):format(tmp, seq), ("%s/rc.%d"):format(tmp, seq)
    local words = { CLEAN_ENV }
    for k, v in pairs(env or {}) do words[#words + 1] = k .. "=" .. q(v) end
    for _, a in ipairs(argv) do words[#words + 1] = q(a) end
    local cmd = ("cd %s && %s >%s 2>&1; echo $? >%s"):format(q(ROOT), table.concat(words, " "), q(out_file), q(rc_file))
    local p = assert(io.popen(cmd, "w"))
    local pin
    if type(input) == "function" then
      local deadline = helpers.gettime() + 5
      repeat
        pin = sb:last_pin(PHONE)
        if not pin then helpers.sleep(0.01) end
      until pin or helpers.gettime() > deadline
      input = input(pin)
    end
    p:write(input or "")   -- luasocket ignores SIGPIPE: a child that already exited is harmless
    p:close()
    local out = helpers.read_file(out_file) or ""
    local rc = tonumber((helpers.read_file(rc_file) or ""):match("%d+"))
    return out, rc, pin
  end

  -- A wrong PIN, then the right one.
  local function wrong_then_right(pin)
    return pin and (wrong_pins(pin, 1)[1] .. "\n" .. pin .. "\n") or ""
  end

  local function three_wrong(pin)
    return table.concat(wrong_pins(pin, 3), "\n") .. "\n"
  end

  -- The gateway calls the sandbox recorded: { {path=, body=decoded JSON or nil}, ... }
  local function calls()
    local out = {}
    for _, r in ipairs(sb:requests()) do
      local ok, body = pcall(cjson.decode, r.body or "")
      out[#out + 1] = { path = r.path, body = ok and body or nil, headers = r.headers }
    end
    return out
  end

  local function paths(list)
    local out = {}
    for i, c in ipairs(list) do out[i] = c.path end
    return out
  end

  describe("plain Lua script (examples/plain/verify.lua)", function()
    local SCRIPT = "examples/plain/verify.lua"

    it("verifies the number after one wrong PIN, exit status 0", function()
      local out, rc, pin = run({ "lua5.4", SCRIPT, TYPED }, token_env(), wrong_then_right)
      assert.is_string(pin, out)
      assert.equals(0, rc, out)
      assert.matches("A PIN was sent by SMS to %+393471234567%.", out)
      assert.equals(2, count(out, "Enter the PIN: "), out)
      assert.matches("Wrong PIN, 2 tries remaining%.", out)
      assert.matches("PIN verified: %+393471234567 is confirmed%.", out)
      assert.is_nil(out:find(pin, 1, true), "the PIN must never be printed")

      local c = calls()
      assert.same({ "2fa/request", "2fa/verify", "2fa/verify" }, paths(c))
      assert.equals(PHONE, c[1].body.recipient)                      -- normalized before sending
      assert.equals("SBXUSER", c[1].headers.user_key)
      assert.equals("SBXTOKEN", c[1].headers.access_token)
      assert.same({ recipient = PHONE, pin = wrong_pins(pin, 1)[1] }, c[2].body)
      assert.same({ recipient = PHONE, pin = pin }, c[3].body)
      local sms = sb:sms()
      assert.equals(1, #sms)
      assert.equals(PHONE, sms[1].recipient)
      assert.equals("Your verification code is " .. pin, sms[1].text)
    end)

    it("gives up after three wrong PINs, exit status 1", function()
      local out, rc, pin = run({ "lua5.4", SCRIPT, TYPED }, token_env(), three_wrong)
      assert.is_string(pin, out)
      assert.equals(1, rc, out)
      assert.equals(3, count(out, "Enter the PIN: "), out)
      assert.matches("Wrong PIN, 2 tries remaining%.", out)
      assert.matches("Wrong PIN, 1 try remaining%.", out)
      assert.matches("Wrong PIN, 0 tries remaining%.", out)
      assert.matches("The number is NOT verified%.", out)
      assert.is_nil(out:find("PIN verified", 1, true))
      assert.same({ "2fa/request", "2fa/verify", "2fa/verify", "2fa/verify" }, paths(calls()))
    end)

    it("fails with exit status 1 when the input ends before a PIN is typed", function()
      local out, rc = run({ "lua5.4", SCRIPT, TYPED }, token_env(), "")
      assert.equals(1, rc, out)
      assert.matches("no PIN entered", out)
      assert.same({ "2fa/request" }, paths(calls()))
    end)

    it("refuses a number without a country prefix before anything is sent", function()
      local out, rc = run({ "lua5.4", SCRIPT, "347 123 4567" }, token_env(), "")
      assert.equals(1, rc, out)
      assert.matches("not a usable phone number", out)
      assert.same({}, sb:requests())
      local usage, urc = run({ "lua5.4", SCRIPT }, token_env(), "")
      assert.equals(2, urc, usage)
      assert.matches("usage: verify%.lua PHONE%-NUMBER", usage)
    end)

    it("says why when the environment has no credentials", function()
      local out, rc = run({ "lua5.4", SCRIPT, TYPED }, { SMSEND_BASE_URL = sb.base_url }, "")
      assert.equals(1, rc, out)
      assert.matches("cannot create the smsend client", out)
      assert.same({}, sb:requests())
    end)

    it("runs outside the checkout with an installed module and username/password login", function()
      local elsewhere = tmp .. "/installed"
      assert.is_true(sh("mkdir -p " .. q(elsewhere) .. " && cp " .. q(ROOT .. "/" .. SCRIPT) .. " " .. q(elsewhere)))
      local env = { SMSEND_USERNAME = "sandbox", SMSEND_PASSWORD = "sandbox-pass", SMSEND_BASE_URL = sb.base_url,
                    LUA_CPATH_5_4 = ROOT .. "/build/lua5.4/?.so;;" }   -- as if installed in the cpath
      local out, rc, pin = run({ "lua5.4", elsewhere .. "/verify.lua", "0039 347 123.4567" }, env, wrong_then_right)
      assert.is_string(pin, out)
      assert.equals(0, rc, out)
      assert.matches("PIN verified: %+393471234567 is confirmed%.", out)
      local c = calls()
      assert.same({ "login", "2fa/request", "2fa/verify", "2fa/verify" }, paths(c))
      assert.is_string(c[2].headers.session_key)
    end)
  end)

  describe("embedded configuration (examples/config)", function()
    local RUN = "examples/config/run.lua"

    it("performs wipe_world only after the PIN is verified", function()
      local out, rc, pin = run({ "lua5.4", RUN, "wipe_world", TYPED }, token_env(), wrong_then_right)
      assert.is_string(pin, out)
      assert.equals(0, rc, out)
      assert.equals(2, count(out, "PIN sent by SMS to confirm wipe_world: "), out)
      assert.matches("config: wrong PIN, 2 tries remaining", out)
      assert.matches("config: PIN verified for wipe_world", out)
      assert.matches("host: performing wipe_world\nhost: world wiped", out)
      assert.is_nil(out:find(pin, 1, true), "the PIN must never be logged")
      assert.is_true(out:find("PIN verified", 1, true) < out:find("host: performing", 1, true))

      local c = calls()
      assert.same({ "2fa/request", "2fa/verify", "2fa/verify" }, paths(c))
      assert.equals(PHONE, c[1].body.recipient)
      assert.equals("GameAdmin", c[1].body.senderName)
      assert.same({ recipient = PHONE, pin = pin }, c[3].body)
      local sms = sb:sms()
      assert.equals(1, #sms)
      assert.equals("Code " .. pin .. " confirms wipe_world on your game server. Do not share it.", sms[1].text)
    end)

    it("refuses ban_player after three wrong PINs, exit status 1", function()
      local out, rc, pin = run({ "lua5.4", RUN, "ban_player", TYPED }, token_env(), three_wrong)
      assert.is_string(pin, out)
      assert.equals(1, rc, out)
      assert.equals(3, count(out, "PIN sent by SMS to confirm ban_player: "), out)
      assert.matches("config: wrong PIN, 1 try remaining", out)
      assert.matches("config: ban_player refused: Wrong PIN", out)
      assert.matches("host: ban_player refused", out)
      assert.is_nil(out:find("host: performing", 1, true))
      assert.same({ "2fa/request", "2fa/verify", "2fa/verify", "2fa/verify" }, paths(calls()))
    end)

    it("lets a harmless action through without a PIN or any gateway call", function()
      local out, rc = run({ "lua5.4", RUN, "list_players", TYPED }, token_env(), "")
      assert.equals(0, rc, out)
      assert.matches("host: performing list_players", out)
      assert.same({}, sb:requests())
      assert.same({}, sb:sms())
    end)

    it("runs the configuration sandboxed and performs only when guard returns true", function()
      local function config(name, text)
        local path = tmp .. "/" .. name
        local f = assert(io.open(path, "w"))
        f:write(text)
        f:close()
        return path
      end
      -- no io/os in the environment, and a truthy non-true answer is not a yes
      local probe = config("probe.lua", [[
        admin_actions = { wipe_world = {} }
        function guard() log("io=" .. type(io) .. " os=" .. type(os) .. " load=" .. type(load)) return "yes" end
      ]])
      local out, rc = run({ "lua5.4", RUN, "wipe_world", TYPED, probe }, token_env(), "")
      assert.equals(1, rc, out)
      assert.matches("config: io=nil os=nil load=nil", out)
      assert.matches("host: wipe_world refused", out)

      local greedy = config("greedy.lua", 'local os = require "os"\n')
      out, rc = run({ "lua5.4", RUN, "wipe_world", TYPED, greedy }, token_env(), "")
      assert.equals(2, rc, out)
      assert.matches("may not load module 'os'", out)
      assert.same({}, sb:requests())
    end)
  end)

  describe("C hosts with the static libraries (examples/embed)", function()
    local HOSTS = { { name = "Lua 5.4", path = ROOT .. "/build/embed/host", lib = "build/libsmsend.a" },
                    { name = "LuaJIT", path = ROOT .. "/build/embed/host-luajit", lib = "build/luajit/libsmsend.a" } }
    -- Only the linked-in module can satisfy require: no smsend.so is on these paths.
    local function host_env()
      local env = token_env()
      env.LUA_CPATH_5_4, env.LUA_CPATH = "/nonexistent/?.so", "/nonexistent/?.so"
      return env
    end

    it("build warning-free with make -C examples/embed (make static first)", function()
      for _, h in ipairs(HOSTS) do os.remove(h.path) end
      local log = tmp .. "/make.log"
      local ok = sh(("make -C %s static WERROR=-Werror >%s 2>&1 && make -C %s WERROR=-Werror >>%s 2>&1")
        :format(q(ROOT), q(log), q(ROOT .. "/examples/embed"), q(log)))
      local text = helpers.read_file(log) or ""
      assert.is_true(ok, text)
      assert.matches("%-Wall %-Wextra %-Werror", text)
      assert.is_nil(text:find("warning:", 1, true), text)
      for _, h in ipairs(HOSTS) do
        assert.is_truthy(text:find(h.lib:match("[^/]+/[^/]+$"), 1, true), h.lib .. " not linked: " .. text)
        assert.is_string(helpers.read_file(h.path), "no host binary at " .. h.path)
      end
    end)

    for _, h in ipairs(HOSTS) do
      local HOST = h.path
      describe(h.name, function()
        it("performs wipe_world after a wrong and a right PIN, exit status 0", function()
          assert.is_string(helpers.read_file(HOST), "build the host first")
          local out, rc, pin = run({ HOST, "examples/embed/config.lua", "wipe_world", TYPED }, host_env(), wrong_then_right)
          assert.is_string(pin, out)
          assert.equals(0, rc, out)
          assert.equals(2, count(out, "PIN to confirm wipe_world: "), out)
          assert.matches("config: wrong PIN, 2 tries remaining", out)
          assert.matches("config: PIN verified\nhost: performing wipe_world\nhost: world wiped", out)
          assert.is_nil(out:find(pin, 1, true), "the PIN must never be printed")
          assert.same({ "2fa/request", "2fa/verify", "2fa/verify" }, paths(calls()))
          assert.equals("Code " .. pin .. " confirms wipe_world. Do not share it.", sb:sms()[1].text)
        end)

        it("refuses after three wrong PINs, exit status 1", function()
          local out, rc, pin = run({ HOST, "examples/embed/config.lua", "ban_player", TYPED }, host_env(), three_wrong)
          assert.is_string(pin, out)
          assert.equals(1, rc, out)
          assert.matches("config: refused: Wrong PIN\nhost: ban_player refused", out)
          assert.is_nil(out:find("host: performing", 1, true))
          assert.same({ "2fa/request", "2fa/verify", "2fa/verify", "2fa/verify" }, paths(calls()))
        end)

        it("registers smsend (package.loaded, no global) and treats errors as refusals", function()
          local path = tmp .. "/embed-probe.lua"
          local f = assert(io.open(path, "w"))
          f:write([[
            local smsend = require "smsend"
            print("probe:", package.loaded.smsend == smsend, rawget(_G, "smsend") == nil, smsend.normalize_recipient("0039 347 1234567"))
            print("version:", type(jit) == "table" and "luajit" or _VERSION)
            function guard(action) error("guard broke on " .. action) end
          ]])
          f:close()
          local out, rc = run({ HOST, path, "wipe_world", TYPED }, host_env(), "")
          assert.equals(1, rc, out)
          assert.matches("probe:\ttrue\ttrue\t%+393471234567", out)
          assert.matches("version:\t" .. (h.name == "LuaJIT" and "luajit" or "Lua 5%.4"), out)
          assert.matches("host: guard failed: .*guard broke on wipe_world", out)
          assert.matches("host: wipe_world refused", out)

          local usage, urc = run({ HOST }, host_env(), "")
          assert.equals(2, urc, usage)
          assert.matches("usage: ", usage)
          local bad, brc = run({ HOST, "examples/embed/config.lua", "format_disk", TYPED }, host_env(), "")
          assert.equals(2, brc, bad)
          assert.matches("no such admin action: format_disk", bad)
          assert.same({}, sb:requests())
        end)
      end)
    end
  end)
end)

-- examples/openresty as its own comments tell a user to run it (the login flow itself and the
-- metrics are in spec/openresty_spec.lua and spec/metrics_spec.lua).
describe("OpenResty example (examples/openresty)", function()
  local openresty = require "spec.support.openresty"
  local socket = require "socket"
  local CONF = assert(helpers.read_file(ROOT .. "/examples/openresty/nginx.conf"))
  local sb, tmp

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    tmp = helpers.tmpdir("smsend-examples-openresty")
  end)
  teardown(function()
    if sb then sb:stop() end
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  local conf = openresty.example_conf

  local function wait(what, fn)
    local deadline = socket.gettime() + 10
    while not fn() do
      assert(socket.gettime() < deadline, what)
      socket.sleep(0.02)
    end
  end

  it("starts and stops with the commands its comments give", function()
    local start, stop
    for cmd in CONF:gmatch("\n#%s+(nginx %-p [^\n]+)") do
      if cmd:find(" %-s quit$") then stop = cmd else start = start or cmd end
    end
    assert.is_string(start)
    assert.is_string(stop)
    assert.matches('^nginx %-p "%$PWD/examples/openresty/" %-c nginx%.conf ', start)
    assert.are.equal(start .. " -s quit", stop)
    -- the same commands, with the prefix in a directory of the spec's own (nothing in the checkout)
    local prefix = tmp .. "/openresty/"
    assert.is_true(sh("mkdir -p " .. q(prefix .. "logs")))
    local port = helpers.sandbox.free_port()
    local text = conf(port)
    if openresty.is_root then text = "user root;\n" .. text end
    local f = assert(io.open(prefix .. "nginx.conf", "w"))
    f:write(text)
    f:close()
    local function shell(cmd)
      return sh(("cd %s && %s %s >>%s 2>&1"):format(q(ROOT), CLEAN_ENV,
        cmd:gsub('^nginx %-p "%$PWD/examples/openresty/"', "nginx -p " .. q(prefix)), q(prefix .. "out.log")))
    end
    local function master()
      return tonumber((helpers.read_file(prefix .. "logs/nginx.pid") or ""):match("%d+"))
    end
    finally(function()
      local pid = master()
      if pid then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    end)
    assert.is_true(shell(start), helpers.read_file(prefix .. "out.log"))
    wait("nginx did not answer /ping", function()
      local status = openresty.http(port, "GET", "/ping", nil, 1)
      return status == 200
    end)
    local pid = assert(master())
    assert.is_true(shell(stop), helpers.read_file(prefix .. "out.log"))
    wait("nginx did not stop", function() return not helpers.sandbox.pid_alive(pid) end)
    assert.is_nil(openresty.http(port, "GET", "/ping", nil, 1))
  end)

  it("names nginx's env directive when the workers see no credentials", function()
    -- the env lines left out: nginx has the credentials in its environment, its workers do not
    local ng = openresty.start{
      conf = function(port)
        local t, n = conf(port):gsub("\nenv SMSEND_[%u_]+;", "")
        assert(n >= 3)
        t, n = t:gsub("\nworker_processes auto;", "\nworker_processes 1;")
        assert(n == 1)
        return t
      end,
      env = { SMSEND_USER_KEY = "SBXUSER", SMSEND_ACCESS_TOKEN = "SBXTOKEN", SMSEND_BASE_URL = sb.base_url },
      workers = 1,
    }
    finally(function() ng:stop() end)
    local body = "username=alice&password=wonderland"
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", ng.port))
    assert(c:send(("POST /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      .. "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body)))
    local data = c:receive("*a")
    c:close()
    assert.matches("^HTTP/1%.1 502", data)
    assert.matches('"sms_failed"', data)
    local log = ng:read_error_log()
    assert.matches("smsend request_pin failed: invalid_request: no credentials", log, 1, true)
    assert.matches("inside nginx: a worker sees only the environment variables named by `env` directives",
      log, 1, true)
    assert.matches("`env SMSEND_USER_KEY;`", log, 1, true)
    assert.same({}, sb:requests())
  end)
end)

describe("make demo (examples/demo.lua)", function()
  it("runs the flow, then the CLI with --json and its exit codes, then shows the metrics", function()
    local p = assert(io.popen(("cd %s && %s SMSEND_CPATH=%s lua5.4 examples/demo.lua 2>&1; echo \"exit=$?\"")
      :format(q(ROOT), CLEAN_ENV, q(ROOT .. "/build/lua5.4/?.so"))))
    local out = p:read("*a")
    p:close()
    assert.matches("\nexit=0\n$", out)
    assert.matches("demo finished", out)
    -- the CLI: one JSON object per run, the number as sent, and the exit code explained
    local json = {}
    for line in out:gmatch("\n   (%{[^\n]*%})\n") do json[#json + 1] = cjson.decode(line) end
    assert.are.equal(2, #json, out)
    assert.is_true(json[1].ok)
    assert.are.equal(0, json[1].exit_code)
    assert.are.equal("+393477654321", json[1].recipient)
    assert.is_false(json[2].ok)
    assert.is_false(json[2].retryable)
    assert.are.equal(4, json[2].exit_code)
    assert.matches("\n   exit code 0: ok\n", out, 1, true)
    assert.matches("\n   exit code 4: outcome unknown: an SMS may have been sent\n", out, 1, true)
    -- the counters of the demo's own calls
    assert.matches('\n   smsend_calls_total{op="request_pin",outcome="ok"} 1\n', out, 1, true)
    assert.matches('\n   smsend_calls_total{op="verify_pin",outcome="wrong_pin"} 1\n', out, 1, true)
    assert.matches("\n   smsend_gateway_seconds_count 5\n", out, 1, true)
  end)
end)
