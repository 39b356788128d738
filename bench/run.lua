-- run.lua — `make bench`: starts a local nginx that answers the 2FA endpoints at once (HTTP and
-- HTTPS with a CA made here), runs every client against it, measures and prints the tables, and
-- writes them as Markdown to $BENCH_OUT/results.md. Run from the repository root with lua5.4.
-- Settings come from the environment (bench/bench.mk passes them through); see docs/benchmarks.md.
-- The reference is the bare libcurl loop of bench/bare.c (issue 14); bench/limit.c is a second one.

local socket = require "socket"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end
local function envn(name, default) return math.tointeger(tonumber(env(name, default))) or default end

local ROOT = env("BENCH_ROOT", ".")
local OUT = env("BENCH_OUT", "build/bench")
local BARE_BIN = env("BENCH_BARE", OUT .. "/bare")
local LIMIT_BIN = env("BENCH_LIMIT", OUT .. "/limit")
local OPTIONS_BIN = env("BENCH_OPTIONS_BIN", OUT .. "/options")
local LUA54_CPATH = env("BENCH_LUA54_CPATH", "build/lua5.4/?.so")
local LUAJIT_CPATH = env("BENCH_LUAJIT_CPATH", "build/luajit/?.so")
local LUA54_WAIT = env("BENCH_LUA54_WAIT", OUT .. "/lua5.4/?.so")   -- bench/pollwait.c's builds
local LUAJIT_WAIT = env("BENCH_LUAJIT_WAIT", OUT .. "/luajit/?.so")
local N = envn("BENCH_N", 2000)              -- requests per timed run, libcurl clients
local N_SLOW = envn("BENCH_N_SLOW", 50)      -- requests per timed run, LuaSocket and curl CLI
local RUNS = envn("BENCH_RUNS", 5)           -- rounds: one timed run per client each (median reported)
local MEM_RUNS = math.max(4, envn("BENCH_MEM_RUNS", 10)) -- runs of N in one process for the memory-growth check
-- The growth is read from this run to the last: the earlier ones warm up the allocator, the caches
-- and the GC's pace (with pollable ops over HTTPS the C heap reaches its high-water mark in run 3 to 5 here).
local MEM_FROM = MEM_RUNS // 2
local CG_N1 = envn("BENCH_CG_N1", 200)       -- callgrind request counts, libcurl clients
local CG_N2 = envn("BENCH_CG_N2", 1200)
local CG_SLOW_N1 = envn("BENCH_CG_SLOW_N1", 10) -- callgrind request counts, LuaSocket
local CG_SLOW_N2 = envn("BENCH_CG_SLOW_N2", 60)
local CG_CURL = envn("BENCH_CG_CURL", 3)      -- curl CLI: processes measured, median taken
local CG_REPEAT = math.max(1, envn("BENCH_CG_REPEAT", 3)) -- callgrind pairs of the rows with a target (median)
-- callgrind runs in parallel. 1 by default: with nginx short of a core, libcurl polls more often
-- before the answer is there, which moves the counts by up to 1-2%; alone they repeat within 0.05%.
local JOBS = envn("BENCH_JOBS", 1)
local CALLGRIND = env("BENCH_CALLGRIND", "1") ~= "0"
local SCALE = env("BENCH_SCALE", "1") ~= "0"   -- the scale rows (ops in flight, cache, message size)
local LIBCURL_OPTS = env("BENCH_LIBCURL_OPTS", "1") ~= "0" -- libcurl's options one by one on the bare loop
local ONLY = env("BENCH_ONLY", nil)           -- comma list of client ids, default all
local PROTOS = env("BENCH_PROTOS", "http,https")
local UPDATE_README = env("BENCH_README", "0") == "1"
local OPENRESTY = env("BENCH_OPENRESTY", "1") ~= "0"  -- run bench/openresty's part when it exists
local PIN = env("BENCH_PIN", "1") ~= "0"      -- clients on one core, nginx on another (taskset)
local UNPINNED = env("BENCH_UNPINNED", "1") ~= "0" -- when pinned, also time rounds with nothing pinned

-- helpers -------------------------------------------------------------------------------------

-- Shell, file and port helpers shared with the sandbox launcher (found from this file's location).
local function script_dir()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or "bench/run.lua"
  return file:match("^(.*)/[^/]*$") or "."
end
local sandbox = dofile(script_dir() .. "/../sandbox/launch.lua")
local P = dofile(script_dir() .. "/payload.lua")
local CG = dofile(script_dir() .. "/callgrind.lua")

local shq = sandbox.shell_quote
local run = sandbox.run

local function capture(cmd)
  local f = assert(io.popen(cmd, "r"))
  local out = f:read("a")
  local ok, _, code = f:close()
  return out, ok == true, code
end

local function trim(s) return ((s or ""):gsub("^%s+", ""):gsub("%s+$", "")) end

local read_file = sandbox.read_file

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

local function median(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  local n = #c
  if n == 0 then return nil end
  if n % 2 == 1 then return c[(n + 1) // 2] end
  return (c[n // 2] + c[n // 2 + 1]) / 2
end

local function say(...) io.stderr:write(string.format(...), "\n") io.stderr:flush() end

local function die(...)
  say("bench: " .. string.format(...))
  error("bench failed", 0)
end

local free_port = sandbox.free_port

local function wait_port(port, secs)
  local deadline = socket.gettime() + secs
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    if c:connect("127.0.0.1", port) then c:close() return true end
    c:close()
    socket.sleep(0.05)
  end
  return false
end

-- Pinning: the clients on one CPU, nginx on another, when there are two and taskset is here.
local CLIENT_CPU, SERVER_CPU, PIN_CLIENT, PIN_SERVER = nil, nil, "", ""
local ALL_CPUS = (read_file("/proc/self/status") or ""):match("Cpus_allowed_list:%s*([%d,%-]+)") or ""
if PIN and run("command -v taskset >/dev/null 2>&1") then
  local list = ALL_CPUS
  local cpus = {}
  for a, b in list:gmatch("(%d+)%-?(%d*)") do
    for i = tonumber(a), tonumber(b ~= "" and b or a) do cpus[#cpus + 1] = i end
  end
  if #cpus >= 2 then
    CLIENT_CPU, SERVER_CPU = tostring(cpus[1]), tostring(cpus[2])
    PIN_CLIENT, PIN_SERVER = "taskset -c " .. CLIENT_CPU .. " ", "taskset -c " .. SERVER_CPU .. " "
  end
end

-- TLS material --------------------------------------------------------------------------------

local TLS = OUT .. "/tls"

local function make_certs()
  run("rm -rf " .. shq(TLS) .. " && mkdir -p " .. shq(TLS))
  write_file(TLS .. "/server.ext", table.concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  }, "\n") .. "\n")
  local d = shq(TLS)
  local cmd = table.concat({
    "cd " .. d,
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key",
    "openssl req -x509 -new -key ca.key -sha256 -days 30 -subj '/CN=smsend-lua bench CA' " ..
      "-addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem",
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key",
    "openssl req -new -key server.key -subj '/CN=127.0.0.1' -out server.csr",
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 30 " ..
      "-extfile server.ext -out server.pem",
  }, " && ") .. " >/dev/null 2>&1"
  if not run(cmd) then die("could not make the bench certificates with openssl") end
  return TLS .. "/ca.pem"
end

-- nginx ----------------------------------------------------------------------------------------

local NGX = OUT .. "/nginx"
local ngx_pid

local function abs(path)
  if path:sub(1, 1) == "/" then return path end
  return trim(capture("pwd")) .. "/" .. path
end

-- An nginx left running by an interrupted bench (its master's command line names our prefix).
local function stop_stale_nginx()
  local pid = tonumber(trim(read_file(NGX .. "/nginx.pid") or ""))
  local cmdline = pid and read_file("/proc/" .. pid .. "/cmdline") or ""
  if pid and cmdline:find("nginx", 1, true) and cmdline:find(abs(NGX), 1, true) then
    say("bench: stopping the nginx of an earlier run (pid %d)", pid)
    run("kill -QUIT " .. pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not run("kill -0 " .. pid .. " 2>/dev/null") then break end
      socket.sleep(0.05)
    end
  end
end

local function start_nginx(http_port, https_port)
  stop_stale_nginx()
  run("rm -rf " .. shq(NGX) .. " && mkdir -p " .. shq(NGX .. "/tmp"))
  local p, t = abs(NGX), abs(TLS)
  local answer = [[
      default_type application/json;
      return 200 '{"status":"OK"}';]]
  local locations = string.format([[
    location = /API/v1.0/REST/2fa/request {%s
    }
    location = /API/v1.0/REST/2fa/verify {%s
    }
    location / { return 404; }]], answer, answer)
  local conf = string.format([[
# Generated by bench/run.lua: answers the 2FA endpoints at once; logs one line per request with
# the connection serial so the bench can count TCP connections and TLS handshakes.
worker_processes 1;
daemon on;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 1024; }
http {
  log_format bench '$connection $connection_requests $ssl_session_reused $server_port $status $request_length $request_method $uri';
  client_body_temp_path %s/tmp/body;
  proxy_temp_path %s/tmp/proxy;
  fastcgi_temp_path %s/tmp/fastcgi;
  uwsgi_temp_path %s/tmp/uwsgi;
  scgi_temp_path %s/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server_tokens off;
  server {
    listen 127.0.0.1:%d;
    access_log %s/access.log bench;
%s
  }
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/server.pem;
    ssl_certificate_key %s/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:BENCH:1m;
    ssl_session_timeout 10m;
    access_log %s/access.log bench;
%s
  }
}
]], p, p, p, p, p, p, p, http_port, p, locations, https_port, t, t, p, locations)
  write_file(NGX .. "/nginx.conf", conf)
  local out, ok = capture(PIN_SERVER .. "nginx -p " .. shq(p .. "/") .. " -c " .. shq(p .. "/nginx.conf") .. " -e " ..
    shq(p .. "/error.log") .. " 2>&1")
  if not ok then die("nginx did not start: %s", out) end
  for _ = 1, 100 do
    ngx_pid = tonumber(trim(read_file(NGX .. "/nginx.pid") or ""))
    if ngx_pid then break end
    socket.sleep(0.05)
  end
  if not ngx_pid or not wait_port(http_port, 5) or not wait_port(https_port, 5) then
    die("nginx is not listening (see %s/error.log)", NGX)
  end
end

-- Moves nginx (master and workers, every thread) to these CPUs.
local function set_nginx_cpus(cpus)
  if not ngx_pid then return end
  local pids = ngx_pid .. " " .. capture("ps -o pid= --ppid " .. ngx_pid)
  for pid in pids:gmatch("%d+") do run("taskset -a -p -c " .. cpus .. " " .. pid .. " >/dev/null 2>&1") end
end

local function stop_nginx()
  if ngx_pid then
    run("kill -QUIT " .. ngx_pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not run("kill -0 " .. ngx_pid .. " 2>/dev/null") then break end
      socket.sleep(0.05)
    end
    ngx_pid = nil
  end
end

-- access log: what the server saw between two offsets
local function log_since(offset, https_port)
  local f = io.open(NGX .. "/access.log", "rb")
  if not f then return { requests = 0, conns = 0, full = 0, resumed = 0, ok = 0, lengths = {} } end
  f:seek("set", offset)
  local s = f:read("a")
  f:close()
  local r = { requests = 0, conns = 0, full = 0, resumed = 0, ok = 0, lengths = {}, posts = 0 }
  local seen = {}
  for line in s:gmatch("[^\n]+") do
    local conn, _, reused, port, status, len, method =
      line:match("^(%d+) (%d+) (%S+) (%d+) (%d+) (%d+) (%S+)")
    if conn then
      r.requests = r.requests + 1
      if status == "200" then r.ok = r.ok + 1 end
      if method == "POST" then r.posts = r.posts + 1 end
      r.lengths[len] = (r.lengths[len] or 0) + 1
      if not seen[conn] then
        seen[conn] = true
        r.conns = r.conns + 1
        if tonumber(port) == https_port then
          if reused == "r" then r.resumed = r.resumed + 1 else r.full = r.full + 1 end
        end
      end
    end
  end
  return r
end
-- clients ---------------------------------------------------------------------------------------

local CURL_LOOP = ROOT .. "/bench/curl-loop.sh"
local CLIENT_LUA = ROOT .. "/bench/client.lua"
local BODY = P.body()

-- Each row: id, label, sets (what it sets and does, for the legend), kind ("ref" = a C loop,
-- "lua" = a libcurl client in Lua, "slow" = LuaSocket, "cli" = curl CLI, "floor" = Lua only), and
-- cmd(base, ca, n, runs) -> command, environment prefix. scale = true: callgrind only (the scale
-- tables). ref = the id of the row its Ir/req is compared with (default the bare loop). roots:
-- the smsend.so functions whose call trees are shown.
local function c_loop(id, bin, bytes, extras)
  local body = P.body(P.message(bytes))
  local tail = extras and (" " .. shq(extras)) or ""
  return { id = id, kind = "ref", bytes = bytes,
    cmd = function(base, ca, n, runs)
      return string.format("%s %s %s %d %d %s%s", shq(bin), shq(base), shq(ca or "-"), n, runs, shq(body), tail)
    end,
    show = function(n, runs) return string.format("%s '<BASE>' '<CA|->' %d %d '<BODY>'%s", shq(bin), n, runs, tail) end }
end

local function lua_client(id, interp, mode)
  local jit = interp == "luajit"
  local envs = "SMSEND_CPATH=" .. shq(jit and LUAJIT_CPATH or LUA54_CPATH) .. " "
  if mode:match("^poll") then envs = envs .. "BENCH_WAIT_CPATH=" .. shq(jit and LUAJIT_WAIT or LUA54_WAIT) .. " " end
  return { id = id, kind = "lua", jit = jit, mode = mode,
    cmd = function(base, ca, n, runs)
      return string.format("%s %s %s %s %s %d %d", interp, shq(CLIENT_LUA), mode, shq(base), shq(ca or "-"), n, runs), envs
    end }
end

local function with(c, t) for k, v in pairs(t) do c[k] = v end return c end

local SETS = {
  object = "`smsend.new{user_key, access_token, base_url, cainfo}` once; `client:request_pin{recipient, senderName, expiry, messageBody}` per request. Every feature on: fields checked in C, JSON built in C, timeouts, peer and host verification, the no-resend guard (`CURLOPT_PREREQFUNCTION`), socket callbacks, the answer read strictly, the status table",
  module = "`smsend.request_pin{...}` with a new table of 8 keys per request (4 options, 4 fields); the module finds its cached client by comparing the options",
  poll = "a plain loop: `client:request_pin_async{...}` per request, then `op:poll()` until it answers; while it does not, a wait for `op:pollfd()` to be readable, for at most `op:timeout()`: `poll(2)` through `bench/pollwait.c`, the least any event loop spends on it (with LuaSocket's `socket.select` instead: the scale table)",
}

local CLIENTS = {
  with(c_loop("bare", BARE_BIN, 20), { label = "bare libcurl loop (the reference)", target = true,
    sets = "`bench/bare.c`: one easy handle; set once: `CURLOPT_URL`, `CURLOPT_HTTPHEADER` with the three headers (`user_key`, `Access_token`, `Content-Type: application/json`), `CURLOPT_POSTFIELDS`, a `CURLOPT_WRITEFUNCTION` that discards; over HTTPS also `CURLOPT_CAINFO`. Nothing else (libcurl's defaults: no User-Agent, proxy variables read and the URL parsed on every request). Per request: `curl_easy_perform`, the curl code and the status checked" }),
  with(c_loop("limit", LIMIT_BIN, 20), { label = "C limit (`bench/limit.c`)",
    sets = "the bare loop plus, set once, the options the module used to set: `NOSIGNAL`, `TIMEOUT_MS`/`CONNECTTIMEOUT_MS`, `FOLLOWLOCATION 0`, `SSL_VERIFYPEER`/`VERIFYHOST`, `HTTP_VERSION 1.1`, `TCP_KEEPALIVE`, `PROTOCOLS_STR`, `POSTFIELDSIZE` and `CURLOPT_USERAGENT` (the module's string); the answer copied into a buffer and searched for `\"status\":\"OK\"`" }),
  with(lua_client("object54", "lua5.4", "object"), { label = "client:request_pin, Lua 5.4", sets = SETS.object, target = true,
    roots = { "m_request_pin" } }),
  with(lua_client("module54", "lua5.4", "module"), { label = "smsend.request_pin, Lua 5.4", sets = SETS.module, target = true,
    roots = { "module_call" } }),
  with(lua_client("poll54", "lua5.4", "poll"), { label = "op:poll()-driven, Lua 5.4", sets = SETS.poll, target = true,
    roots = { "lsm_request_pin_async", "o_poll", "o_timeout", "o_gc" } }),
  with(lua_client("objectjit", "luajit", "object"), { label = "client:request_pin, LuaJIT", sets = SETS.object }),
  with(lua_client("modulejit", "luajit", "module"), { label = "smsend.request_pin, LuaJIT", sets = SETS.module }),
  with(lua_client("polljit", "luajit", "poll"), { label = "op:poll()-driven, LuaJIT", sets = SETS.poll }),
  with(lua_client("luasocket", "lua5.4", "luasocket"), { kind = "slow",
    label = "LuaSocket socket.http (+ LuaSec for HTTPS) + lua-cjson, Lua 5.4",
    sets = "`socket.http.request` POST with the same headers, the body from `cjson.encode`, the answer through `ltn12.sink.table` and `cjson.decode`; over HTTPS the socket wrapped by LuaSec as `ssl.https` does (peer verified with the bench CA). `Connection: close`: a connection (and a full handshake) per request. `TCP_NODELAY` set (`BENCH_LUASOCKET_NODELAY=0` measures the defaults)" }),
  { id = "curlcli", kind = "cli", label = "curl CLI, one process per request",
    sets = "`out=$(curl -sS --http1.1 [--cacert CA] -H ... --data-binary \"$body\" URL)` and a `case` on the answer, per request (`bench/curl-loop.sh`)",
    cmd = function(base, ca, n, _)
      return string.format("sh %s %s %s %d %s", shq(CURL_LOOP), shq(base), shq(ca or "-"), n, shq(BODY))
    end,
    show = function(n) return string.format("sh %s '<BASE>' '<CA|->' %d '<BODY>'", shq(CURL_LOOP), n) end },
  -- scale rows: callgrind only
  with(lua_client("poll54k16", "lua5.4", "poll:16"), { scale = true, label = "op:poll()-driven, Lua 5.4, 16 ops in flight on one client" }),
  with(lua_client("poll54k64", "lua5.4", "poll:64"), { scale = true, label = "op:poll()-driven, Lua 5.4, 64 ops in flight on one client" }),
  with(lua_client("pollselect54", "lua5.4", "pollselect"), { scale = true,
    label = "op:poll()-driven, Lua 5.4, waiting with LuaSocket's socket.select instead of poll(2)" }),
  with(lua_client("module54c8", "lua5.4", "module:8"), { scale = true, label = "smsend.request_pin, Lua 5.4, 8 configurations in turn" }),
  with(lua_client("object54m1600", "lua5.4", "object:1600"), { scale = true, ref = "bare1600",
    label = "client:request_pin, Lua 5.4, 1 600-byte messageBody" }),
  with(c_loop("bare1600", BARE_BIN, 1600), { scale = true, label = "bare libcurl loop, 1 600-byte messageBody" }),
  with(lua_client("loop54", "lua5.4", "loop"), { kind = "floor", scale = true,
    label = "Lua 5.4 loop: request table in, result table out, no C, no I/O" }),
}
-- libcurl's options one by one on the bare loop (bench/options.c), callgrind only, with half the
-- usual request counts; HTTPS only for those that touch TLS.
local OPTION_ROWS = {
  { "-", "the bare loop (through options.c)", both = true },
  { "curlu", "+ `CURLOPT_CURLU` instead of `CURLOPT_URL`" },
  { "ua_header", "+ User-Agent as a header-list entry" },
  { "one_entry", "the three headers and the User-Agent as one header-list entry (as src/http.c)" },
  { "useragent", "+ `CURLOPT_USERAGENT`" },
  { "timeouts", "+ `TIMEOUT_MS`, `CONNECTTIMEOUT_MS`" },
  { "proxy_off", "+ `CURLOPT_PROXY \"\"`" },
  { "noproxy", "+ `CURLOPT_NOPROXY \"\"`" },
  { "wipe", "+ a wiping allocator (`curl_global_init_mem`)" },
  { "cleanse", "+ `SSL_OP_CLEANSE_PLAINTEXT` (`CURLOPT_SSL_CTX_FUNCTION`)", https_only = true },
  { "multi", "driven by `curl_multi_perform` + `curl_multi_poll`" },
  { "msock", "driven by `curl_multi_socket_action` over epoll (as src/http.c)" },
  { "module", "every option src/http.c sets, `curl_easy_perform`" },
  { "module,multi", "every option src/http.c sets, driven as its blocking calls are (`curl_multi_perform` + `curl_multi_poll`): the module's libcurl use", both = true },
  { "module,msock", "the same, driven as its pollable ops are (`curl_multi_socket_action` over epoll)" },
}
for _, o in ipairs(OPTION_ROWS) do
  local c = c_loop("opt_" .. (o[1] == "-" and "none" or (o[1]:gsub(",", "+"))), OPTIONS_BIN, 20, o[1])
  c.label, c.scale, c.libcurl_opt, c.extras = o[2], true, true, o[1]
  c.cg_n = { math.max(1, CG_N1 // 2), math.max(2, CG_N2 // 2) }
  c.protos = o.both and { http = true, https = true } or o.https_only and { https = true } or { http = true }
  CLIENTS[#CLIENTS + 1] = c
end

local BY_ID = {}
for _, c in ipairs(CLIENTS) do BY_ID[c.id] = c end

local selected = {}
if ONLY then for id in ONLY:gmatch("[^,%s]+") do selected[id] = true end end
-- the bare loop always runs: every ratio is to it
local function wanted(c)
  if c.libcurl_opt then return LIBCURL_OPTS and (not ONLY or selected[c.id]) end
  if c.scale and not SCALE then return false end
  return not ONLY or selected[c.id] or c.id == "bare" or (c.id == "bare1600" and selected.object54m1600)
end

local protos = {}
for p in PROTOS:gmatch("[^,%s]+") do protos[#protos + 1] = p end

-- the command line with its environment first (so that a valgrind prefix goes in between)
local function full_cmd(c, prefix, ...)
  local cmd, envs = c.cmd(...)
  return (envs or "") .. PIN_CLIENT .. (prefix or "") .. cmd
end
-- the same as shown in the results (without the pinning, said once there)
local function shown_cmd(c, ...)
  local cmd, envs = c.cmd(...)
  return (envs or "") .. cmd
end
-- throughput runs -------------------------------------------------------------------------------

local function parse_runs(out)
  local r = { wall = {}, cpu = {}, rss = {}, lua = {} }
  for line in out:gmatch("[^\n]+") do
    local w, c, rss = line:match("^run %d+ wall=([%d.]+) cpu=([%d.]+) rss_kb=(%-?%d+)")
    if w then
      r.wall[#r.wall + 1] = tonumber(w)
      r.cpu[#r.cpu + 1] = tonumber(c)
      r.rss[#r.rss + 1] = tonumber(rss)
      r.lua[#r.lua + 1] = tonumber(line:match("lua_kb=(%d+)"))
    end
  end
  r.hwm = tonumber(out:match("hwm_kb=(%d+)"))
  return r
end

-- One process of client c: n requests per timed run, `runs` timed runs (the curl CLI: one shell
-- loop of n requests). Returns the runs and what the server saw of them.
local function one_process(c, proto, base, ca, https_port, n, runs)
  local off = file_size(NGX .. "/access.log")
  local res, cmd, expected
  if c.kind == "cli" then
    -- timed from here; CPU and peak RSS from GNU time (waited-for children included)
    local tf = OUT .. "/time.out"
    cmd = c.cmd(base, ca, n)
    local t0 = socket.gettime()
    local out, ok = capture(PIN_CLIENT .. "/usr/bin/time -f '%e %U %S %M' -o " .. shq(tf) .. " " .. cmd .. " 2>&1")
    local w = socket.gettime() - t0
    if not ok then die("%s over %s failed: %s", c.id, proto, out) end
    local _, u, s, m = (read_file(tf) or ""):match("([%d.]+) ([%d.]+) ([%d.]+) (%d+)")
    res = { wall = { w }, cpu = { tonumber(u) + tonumber(s) }, rss = {}, hwm = tonumber(m) }
    expected = n
  else
    cmd = full_cmd(c, nil, base, ca, n, runs)
    local out, ok = capture(cmd .. " 2>&1")
    if not ok then die("%s over %s failed: %s", c.id, proto, out) end
    res = parse_runs(out)
    if #res.wall ~= runs then die("%s over %s: unexpected output: %s", c.id, proto, out) end
    expected = n * runs + 1 -- + the warm-up request
  end
  -- nginx logs a request just after answering it: wait for the last lines to land
  local log
  for _ = 1, 200 do
    log = log_since(off, https_port)
    if log.requests >= expected then break end
    socket.sleep(0.01)
  end
  if log.requests ~= expected or log.ok ~= expected or log.posts ~= expected then
    die("%s over %s: server saw %d requests (%d with 200, %d POST), expected %d", c.id, proto, log.requests,
      log.ok, log.posts, expected)
  end
  res.log, res.cmd = log, cmd
  return res
end

-- accumulates what the server saw over several processes of one client
local function add_log(acc, log)
  acc.requests = (acc.requests or 0) + log.requests
  acc.conns = (acc.conns or 0) + log.conns
  acc.full = (acc.full or 0) + log.full
  acc.resumed = (acc.resumed or 0) + log.resumed
  acc.processes = (acc.processes or 0) + 1
  acc.lengths = acc.lengths or {}
  for k, v in pairs(log.lengths) do acc.lengths[k] = (acc.lengths[k] or 0) + v end
end


-- request bytes ---------------------------------------------------------------------------------

-- The request a client sends, as received by a one-shot HTTP server here (LuaSocket): the request
-- line, the header lines in order, and the body. Answers 200 {"status":"OK"} and closes.
local function raw_request(c, srv)
  local _, port = srv:getsockname()
  local base = string.format("http://127.0.0.1:%d/API/v1.0/REST/", port)
  local f = assert(io.popen(full_cmd(c, nil, base, nil, 1, 0) .. " 2>&1", "r"))
  local conn = srv:accept()
  local r = { headers = {} }
  if conn then
    conn:settimeout(20)
    local bytes = 0
    r.line = conn:receive("*l")
    bytes = bytes + #(r.line or "") + 2
    while true do
      local l = conn:receive("*l")
      if not l or l == "" then bytes = bytes + 2 break end
      bytes = bytes + #l + 2
      r.headers[#r.headers + 1] = l
    end
    local len = 0
    for _, h in ipairs(r.headers) do len = tonumber(h:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")) or len end
    r.body = len > 0 and conn:receive(len) or ""
    r.bytes = bytes + #(r.body or "")
    conn:send('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"status":"OK"}')
    conn:close()
  end
  r.out = f:read("a")
  f:close()
  return r
end

-- Whether two requests are the same bytes but for the order of their header lines, leaving out
-- the header lines `skip` names (lower case): true, or false and what differs.
local function same_request(a, b, skip)
  if a.line ~= b.line then return false, "request line" end
  if a.body ~= b.body then return false, "body" end
  local function set(r)
    local t, n = {}, 0
    for _, h in ipairs(r.headers) do
      local name = h:match("^([^:]+):"):lower()
      if not (skip and skip[name]) then t[h] = (t[h] or 0) + 1 n = n + 1 end
    end
    return t, n
  end
  local sa, na = set(a)
  local sb, nb = set(b)
  if na ~= nb then return false, string.format("%d header lines against %d", na, nb) end
  for h, k in pairs(sa) do
    if sb[h] ~= k then return false, "header " .. (h:match("^([^:]+)") or h) end
  end
  return true
end

-- callgrind ---------------------------------------------------------------------------------------

local CGDIR = OUT .. "/callgrind"

local function vg_prefix(c, outfile)
  local extra = c.jit and " --smc-check=all" or ""
  return "valgrind --tool=callgrind --callgrind-out-file=" .. shq(outfile) .. extra .. " "
end

-- Builds the jobs: a name, a shell command, and what to do with the counts afterwards.
local function cg_jobs(c, proto, base, ca)
  local jobs = {}
  local tag = c.id .. "." .. proto
  if c.kind == "cli" then
    for k = 1, CG_CURL do
      local f = string.format("%s/%s.%d.out", CGDIR, tag, k)
      jobs[#jobs + 1] = { file = f, log = f .. ".log",
        cmd = "BENCH_VG_OUT=" .. shq(f) .. " " .. PIN_CLIENT .. c.cmd(base, ca, 1) }
    end
    return jobs, function()
      local irs = {}
      for _, j in ipairs(jobs) do irs[#irs + 1] = CG.total(j.file) end
      if #irs ~= #jobs then return nil end
      return median(irs), { per_process = true }
    end
  end
  local n1, n2 = CG_N1, CG_N2
  if c.kind == "slow" then n1, n2 = CG_SLOW_N1, CG_SLOW_N2 end
  if c.cg_n then n1, n2 = c.cg_n[1], c.cg_n[2] end
  -- the rows with a target: CG_REPEAT pairs, the median pair kept (timing moves the count a little)
  local pairs_n = c.target and CG_REPEAT or 1
  for k = 1, pairs_n do
    for _, n in ipairs({ n1, n2 }) do
      local f = string.format("%s/%s.n%d%s.out", CGDIR, tag, n, pairs_n > 1 and (".r" .. k) or "")
      jobs[#jobs + 1] = { file = f, log = f .. ".log", n = n, cmd = full_cmd(c, vg_prefix(c, f), base, ca, n, 0) }
    end
  end
  return jobs, function()
    local runs = {}
    for k = 1, pairs_n do
      local j1, j2 = jobs[2 * k - 1], jobs[2 * k]
      local a, b = CG.total(j1.file), CG.total(j2.file)
      if not a or not b then return nil end
      runs[k] = { ir = (b - a) / (n2 - n1), n1 = n1, n2 = n2, ir1 = a, ir2 = b, file1 = j1.file, file2 = j2.file }
    end
    table.sort(runs, function(x, y) return x.ir < y.ir end)
    local info = runs[(#runs + 1) // 2]
    info.lo, info.hi, info.pairs = runs[1].ir, runs[#runs].ir, #runs
    return info.ir, info
  end
end

local function run_jobs(jobs)
  local i = 1
  while i <= #jobs do
    local batch = {}
    for k = i, math.min(i + JOBS - 1, #jobs) do
      local j = jobs[k]
      batch[#batch + 1] = "( " .. j.cmd .. " > " .. shq(j.log) .. " 2>&1; echo $? > " .. shq(j.log .. ".rc") .. " ) &"
    end
    run(table.concat(batch, " ") .. " wait")
    for k = i, math.min(i + JOBS - 1, #jobs) do
      local j = jobs[k]
      if trim(read_file(j.log .. ".rc")) ~= "0" then
        die("callgrind run failed: %s\n%s", j.cmd, read_file(j.log) or "")
      end
    end
    i = i + JOBS
  end
end

-- formatting ----------------------------------------------------------------------------------------

local function fmt_int(v)
  if not v then return "—" end
  local s = string.format("%d", math.floor(v + 0.5))
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  local r = trim(s:reverse():gsub("(%d%d%d)", "%1 "):reverse())
  return (neg and "−" or "") .. r
end
local function fmt(f, v) if not v then return "—" end return string.format(f, v) end
-- A Markdown table's two header lines: the first `left` columns (default 2) left-aligned, the
-- others right-aligned.
local function md_head(cols, left)
  left = left or 2
  return { "| " .. table.concat(cols, " | ") .. " |", "|" .. string.rep("---|", left) .. string.rep("---:|", #cols - left) }
end
local function fmt_delta(v) if not v then return "—" end return (v >= 0 and "+" or "") .. fmt_int(v) end

-- main ----------------------------------------------------------------------------------------------

local function main()
  run("mkdir -p " .. shq(OUT) .. " " .. shq(CGDIR))
  local started = os.time()
  say("bench: certificates, nginx%s", PIN_CLIENT ~= "" and string.format(" (nginx on CPU %s, clients on CPU %s)",
    SERVER_CPU, CLIENT_CPU) or " (not pinned)")
  local ca = abs(make_certs())
  local http_port, https_port = free_port(), free_port()
  while https_port == http_port do https_port = free_port() end
  start_nginx(http_port, https_port)
  local bases = {
    http = string.format("http://127.0.0.1:%d/API/v1.0/REST/", http_port),
    https = string.format("https://127.0.0.1:%d/API/v1.0/REST/", https_port),
  }
  local cas = { http = nil, https = ca }

  local results = {} -- results[proto][id] = { rates, cpus, ..., ir = ..., cg = ... }
  for _, p in ipairs(protos) do results[p] = {} end

  -- 1. throughput, side by side: each round runs every client once (one process: a warm-up
  --    request, then one timed run of N), in an order rotated every round; the ratios to the bare
  --    loop are taken within a round, then the median over the rounds. Pinned (when the machine
  --    allows: results[p][id].main), then, with UNPINNED, the same rounds with nothing pinned
  --    (results[p][id].free). The memory runs follow, not pinned: they count bytes, not time.
  local pinned = PIN_CLIENT ~= ""
  local pin_client = PIN_CLIENT
  local function set_pinning(on)
    if not pinned then return end
    PIN_CLIENT = on and pin_client or ""
    set_nginx_cpus(on and SERVER_CPU or ALL_CPUS)
  end
  local timings = { { key = "main", pinned = pinned } }
  if pinned and UNPINNED then timings[2] = { key = "free", pinned = false } end
  for _, p in ipairs(protos) do
    local list = {}
    for _, c in ipairs(CLIENTS) do
      if wanted(c) and not c.scale then
        list[#list + 1] = c
        results[p][c.id] = { log = {}, hwm = 0 }
      end
    end
    for _, tm in ipairs(timings) do
      set_pinning(tm.pinned)
      for _, c in ipairs(list) do
        results[p][c.id][tm.key] = { rates = {}, cpus = {}, xrate = {}, xcpu = {} }
      end
      for round = 1, RUNS do
        say("bench: %s round %d/%d%s", p, round, RUNS, tm.pinned and " (pinned)" or (pinned and " (not pinned)" or ""))
        local this = {}
        for k = 0, #list - 1 do
          local c = list[(k + round - 1) % #list + 1]
          local n = (c.kind == "ref" or c.kind == "lua") and N or N_SLOW
          local res = one_process(c, p, bases[p], cas[p], https_port, n, 1)
          local r = results[p][c.id]
          local t = r[tm.key]
          r.n, r.cmd = n, res.cmd
          this[c.id] = { rate = n / res.wall[1], cpu = res.cpu[1] / n }
          t.rates[#t.rates + 1] = this[c.id].rate
          t.cpus[#t.cpus + 1] = this[c.id].cpu
          r.hwm = math.max(r.hwm, res.hwm or 0)
          add_log(r.log, res.log)
          if not r.seq or res.log.requests > r.seq.requests then r.seq = res.log end
        end
        for id, t in pairs(this) do
          if this.bare then
            local r = results[p][id][tm.key]
            r.xrate[#r.xrate + 1] = t.rate / this.bare.rate
            r.xcpu[#r.xcpu + 1] = t.cpu / this.bare.cpu
          end
        end
      end
    end
    -- 1b. memory: MEM_RUNS runs of N in one process, VmRSS (after full GCs) after each run
    set_pinning(false)
    for _, c in ipairs(list) do
      if c.kind == "ref" or c.kind == "lua" then
        say("bench: %s memory %s", p, c.id)
        local res = one_process(c, p, bases[p], cas[p], https_port, N, MEM_RUNS)
        local r = results[p][c.id]
        r.rss, r.lua_kb = res.rss, res.lua
        r.hwm = math.max(r.hwm, res.hwm or 0)
        add_log(r.log, res.log)
        if not r.seq or res.log.requests > r.seq.requests then r.seq = res.log end
      end
    end
    set_pinning(true)
  end

  -- 2. request bytes: what each libcurl client sends, captured raw over HTTP
  say("bench: request bytes")
  local wire = {}
  local srv = assert(socket.bind("127.0.0.1", 0)) -- one port for all: the same Host line
  srv:settimeout(20)
  for _, c in ipairs(CLIENTS) do
    if wanted(c) and (c.kind == "ref" or c.kind == "lua") and not c.scale then
      local r = raw_request(c, srv)
      if not r.line then die("request bytes: %s sent nothing: %s", c.id, r.out) end
      wire[#wire + 1] = { c = c, r = r }
      wire[c.id] = r
    end
  end
  srv:close()

  -- 3. callgrind, JOBS at a time (instruction counts do not depend on load)
  local finishers, all_jobs = {}, {}
  if CALLGRIND then
    for _, p in ipairs(protos) do
      for _, c in ipairs(CLIENTS) do
        if wanted(c) and not (c.kind == "floor" and p ~= protos[1]) and (not c.protos or c.protos[p]) then
          local jobs, finish = cg_jobs(c, p, bases[p], cas[p])
          for _, j in ipairs(jobs) do all_jobs[#all_jobs + 1] = j end
          finishers[#finishers + 1] = { p = p, c = c, finish = finish }
        end
      end
    end
    say("bench: %d callgrind runs, %d at a time", #all_jobs, JOBS)
    run_jobs(all_jobs)
    for _, f in ipairs(finishers) do
      local ir, info = f.finish()
      if not ir then die("no callgrind total for %s %s", f.c.id, f.p) end
      results[f.p][f.c.id] = results[f.p][f.c.id] or {}
      results[f.p][f.c.id].ir = ir
      results[f.p][f.c.id].cg = info
    end
  end
  stop_nginx()

  local function ir_of(p, id) local r = results[p] and results[p][id] return r and r.ir end
  local function x_bare(p, id, ref)
    local a, b = ir_of(p, id), ir_of(p, ref or "bare")
    return a and b and a / b
  end

  -- req/s, × bare, CPU µs/req, × bare of one set of timed rounds
  -- (a ratio's median, then its smallest and largest round: the machine is shared)
  local function ratio(list)
    if not list or #list == 0 then return "—" end
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(list) do lo, hi = math.min(lo, v), math.max(hi, v) end
    if #list == 1 then return string.format("%.2f", list[1]) end
    return string.format("%.2f (%.2f–%.2f)", median(list), lo, hi)
  end
  local function timing_cells(t)
    t = t or {}
    local cpu = t.cpus and median(t.cpus)
    return fmt_int(t.rates and median(t.rates)), ratio(t.xrate), fmt("%.1f", cpu and cpu * 1e6), ratio(t.xcpu)
  end

  -- 4. the main table
  local lines = md_head({ "row", "proto", "req/s (median)", "× bare", "CPU µs/req", "× bare", "peak RSS MB", "RSS growth KB",
    "TCP conns / sequential requests", "TLS handshakes (full+resumed)", "Ir/req (callgrind)", "× bare" })
  local function add(s) lines[#lines + 1] = s end
  for _, p in ipairs(protos) do
    for _, c in ipairs(CLIENTS) do
      local r = results[p][c.id]
      if r and not c.scale then
        local growth = r.rss and #r.rss >= MEM_FROM and (r.rss[#r.rss] - r.rss[MEM_FROM])
        local conns, tls = "—", "—"
        if r.seq then
          conns = string.format("%d / %d", r.seq.conns, r.seq.requests)
          if p == "https" then tls = string.format("%d (%d+%d)", r.seq.full + r.seq.resumed, r.seq.full, r.seq.resumed) end
        end
        local rate, xrate, cpu, xcpu = timing_cells(r.main)
        add(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
          c.label, p:upper(), rate, xrate, cpu, xcpu, fmt("%.1f", r.hwm and r.hwm > 0 and r.hwm / 1024 or nil),
          growth and string.format("%+d", growth) or "n/a", conns, tls,
          fmt_int(r.ir) .. ((r.cg and r.cg.per_process) and " ¹" or "") ..
            ((r.cg and (r.cg.pairs or 1) > 1) and string.format(" (%s–%s)", fmt_int(r.cg.lo), fmt_int(r.cg.hi)) or ""),
          fmt("%.3f", x_bare(p, c.id))))
      end
    end
  end

  -- 4b. the same rounds with nothing pinned
  local free = {}
  if pinned and UNPINNED then
    free = md_head({ "row", "proto", "req/s (median)", "× bare", "CPU µs/req", "× bare" })
    for _, p in ipairs(protos) do
      for _, c in ipairs(CLIENTS) do
        local t = results[p][c.id] and results[p][c.id].free
        if t then free[#free + 1] = string.format("| %s | %s | %s | %s | %s | %s |", c.label, p:upper(), timing_cells(t)) end
      end
    end
  end

  -- 5. scale: instructions per request as the load changes shape
  local scale = {}
  if CALLGRIND and SCALE then
    scale = md_head({ "row", "proto", "Ir/req", "× bare", "× the first row of its group" })
    local groups = {
      { "poll54", "poll54k16", "poll54k64", "pollselect54" },
      { "module54", "module54c8" },
      { "object54", "object54m1600" },
      { "bare", "bare1600" },
    }
    for _, p in ipairs(protos) do
      for _, g in ipairs(groups) do
        local first = ir_of(p, g[1])
        for i, id in ipairs(g) do
          local c, ir = BY_ID[id], ir_of(p, id)
          if ir then
            local label = c.label
            if i == 1 then
              label = label .. ({ poll54 = ", 1 op in flight", module54 = ", 1 configuration",
                object54 = ", 20-byte messageBody", bare = ", 20-byte messageBody" })[id]
            end
            local ref = c.ref or "bare"
            scale[#scale + 1] = string.format("| %s | %s | %s | %s%s | %s |", label, p:upper(), fmt_int(ir),
              fmt("%.3f", x_bare(p, id, ref)), ref ~= "bare" and (" (to " .. BY_ID[ref].label .. ")") or "",
              fmt("%.3f", first and ir / first))
          end
        end
      end
    end
    local floor_ir = ir_of(protos[1], "loop54")
    if floor_ir then
      scale[#scale + 1] = string.format("| %s | — | %s | (bare + this: %s) | — |", BY_ID.loop54.label, fmt_int(floor_ir),
        fmt("%.3f", ir_of(protos[1], "bare") and (ir_of(protos[1], "bare") + floor_ir) / ir_of(protos[1], "bare")))
    end
  end

  -- 6. where the instructions go: self Ir per request by object group, and the functions that
  --    differ most from the bare loop
  local split, spots = {}, {}
  if CALLGRIND then
    local head = { "row", "proto" }
    for _, g in ipairs(CG.GROUPS) do head[#head + 1] = g.name end
    head[#head + 1] = "total"
    split = md_head(head)
    local ids = { "bare", "limit", "object54", "module54", "poll54", "objectjit", "modulejit", "polljit" }
    for _, p in ipairs(protos) do
      local bare_g = results[p].bare and results[p].bare.cg and CG.by_group(results[p].bare.cg)
      for _, id in ipairs(ids) do
        local r = results[p][id]
        if r and r.cg and r.cg.file1 then
          local g, cells, dcells = CG.by_group(r.cg), { BY_ID[id].label, p:upper() }, { "  − bare", p:upper() }
          local tot, dtot = 0, 0
          for i = 1, #CG.GROUPS do
            cells[#cells + 1] = fmt_int(g[i])
            tot = tot + g[i]
            if bare_g then
              dcells[#dcells + 1] = fmt_delta(g[i] - bare_g[i])
              dtot = dtot + g[i] - bare_g[i]
            end
          end
          cells[#cells + 1] = fmt_int(tot)
          split[#split + 1] = "| " .. table.concat(cells, " | ") .. " |"
          if bare_g and id ~= "bare" and not BY_ID[id].jit then
            dcells[#dcells + 1] = fmt_delta(dtot)
            split[#split + 1] = "| " .. table.concat(dcells, " | ") .. " |"
          end
        end
      end
      -- each row against the row it differs from by one thing
      for _, pair in ipairs({ { "object54", "bare" }, { "module54", "object54" }, { "poll54", "object54" },
        { "object54m1600", "object54" }, { "poll54k16", "poll54" } }) do
        local id, ref = pair[1], pair[2]
        local r, b = results[p][id], results[p][ref]
        if r and r.cg and r.cg.file1 and b and b.cg and b.cg.file1 then
          spots[#spots + 1] = string.format("%s − %s, %s: %s Ir/req (%s against %s). Self Ir per request of the functions that differ most:",
            id, ref, p:upper(), fmt_delta(r.ir - b.ir), fmt_int(r.ir), fmt_int(b.ir))
          spots[#spots + 1] = ""
          for _, l in ipairs(md_head({ "function [object]", id, ref, "Δ" }, 1)) do spots[#spots + 1] = l end
          for _, h in ipairs(CG.hot_spots(r.cg, b.cg, 14, 4)) do
            spots[#spots + 1] = string.format("| `%s` [%s] | %s | %s | %s |", h.fn, h.ob, fmt_int(h.row), fmt_int(h.ref),
              fmt_delta(h.delta))
          end
          spots[#spots + 1] = ""
        end
      end
    end
  end

  -- 6b. libcurl's options one by one on the bare loop
  local opts = {}
  if CALLGRIND and LIBCURL_OPTS then
    opts = md_head({ "set-up (`bench/options.c` EXTRAS)", "proto", "Ir/req", "− the bare loop" })
    for _, p in ipairs(protos) do
      local ref = ir_of(p, "opt_none")
      for _, c in ipairs(CLIENTS) do
        local ir = c.libcurl_opt and ir_of(p, c.id)
        if ir then
          opts[#opts + 1] = string.format("| %s (`%s`) | %s | %s | %s |", c.label, c.extras, p:upper(), fmt_int(ir),
            c.id == "opt_none" and "—" or fmt_delta(ref and ir - ref))
        end
      end
      local r = results[p].object54
      if r and r.cg and r.cg.file1 then
        local g, sum = CG.by_group(r.cg), 0
        for i, grp in ipairs(CG.GROUPS) do if grp.name:find("^libcurl") or grp.name:find("^TLS") or grp.name:find("^libc") then sum = sum + g[i] end end
        opts[#opts + 1] = string.format("| for comparison: libcurl + TLS + libc self Ir of %s (the module's libcurl use, its callbacks and the binding's libc calls) | %s | %s | %s |",
          BY_ID.object54.label, p:upper(), fmt_int(sum), fmt_delta(ref and sum - ref))
      end
    end
  end

  -- 7. targets
  local checks = {}
  local function check(name, ok, detail)
    checks[#checks + 1] = string.format("- [%s] %s — %s", ok and "x" or " ", name, detail)
  end
  local function note(name, detail) checks[#checks + 1] = string.format("- (reported) %s — %s", name, detail) end
  for _, p in ipairs(protos) do
    local bare = ir_of(p, "bare")
    if bare then
      for _, t in ipairs({ { "object54", 0.97 }, { "module54", 1.00 }, { "poll54", 1.05, " (goal)" } }) do
        local x = x_bare(p, t[1])
        if x then
          local a, b = results[p][t[1]].cg, results[p].bare.cg
          local spread = ""
          if a and b and a.pairs and a.pairs > 1 then
            spread = string.format("; medians of %d callgrind pairs, the row's %s–%s, the bare loop's %s–%s", a.pairs,
              fmt_int(a.lo), fmt_int(a.hi), fmt_int(b.lo), fmt_int(b.hi))
          end
          check(string.format("%s ≤ %.2f× the bare loop's Ir/req%s, %s", BY_ID[t[1]].label, t[2], t[3] or "", p:upper()),
            x <= t[2], string.format("%.3f× (%s vs %s Ir/req%s)", x, fmt_int(ir_of(p, t[1])), fmt_int(bare), spread))
        end
      end
      for _, id in ipairs({ "objectjit", "modulejit", "polljit" }) do
        local x = x_bare(p, id)
        if x then note(BY_ID[id].label .. ", " .. p:upper(), string.format("%.3f× the bare loop (%s vs %s Ir/req)", x,
          fmt_int(ir_of(p, id)), fmt_int(bare))) end
      end
    end
  end
  -- request bytes: the same as the bare loop's but for header order and the User-Agent line
  -- (which the bare loop does not send), and the same as the C limit's but for header order
  if wire.bare then
    for _, w in ipairs(wire) do
      if w.c.id ~= "bare" then
        local ok1, why1 = same_request(w.r, wire.bare, { ["user-agent"] = true })
        local ok2, why2 = true, nil
        if wire.limit and w.c.id ~= "limit" then ok2, why2 = same_request(w.r, wire.limit) end
        check(w.c.id .. ": request bytes as the bare loop's but for header order and its User-Agent line" ..
          (wire.limit and w.c.id ~= "limit" and ", as the C limit's but for header order" or ""), ok1 and ok2,
          ok1 and ok2 and string.format("%d bytes (bare loop: %d)", w.r.bytes, wire.bare.bytes) or
            ("differs: " .. (why1 or why2)))
      end
    end
  end
  for _, p in ipairs(protos) do
    local r = results[p]
    for _, id in ipairs({ "object54", "module54", "poll54", "objectjit", "modulejit", "polljit" }) do
      local t = r[id]
      if t and t.seq then
        local q = t.seq
        local hs = p == "https" and (q.full + q.resumed) or nil
        local ok = q.requests >= 1000 and q.conns <= 1 and (not hs or hs <= 1)
        check(id .. " " .. p:upper() .. ": one TCP connection" .. (hs and " and one TLS handshake" or "") ..
          " per 1000 sequential requests", ok,
          string.format("%d connection(s)%s for %d sequential requests in one process (all processes: %d connections for %d requests in %d processes)",
            q.conns, hs and string.format(", %d handshake(s)", hs) or "", q.requests, t.log.conns, t.log.requests,
            t.log.processes))
      end
      if t and t.rss and #t.rss >= MEM_FROM then
        local g = t.rss[#t.rss] - t.rss[MEM_FROM]
        check(id .. " " .. p:upper() .. ": no memory growth across runs", g <= 8,
          string.format("VmRSS %+d KB from run %d to run %d (%d requests; at most 8 KB, two pages, allowed); after each run of %d: %s KB%s",
            g, MEM_FROM, #t.rss, N * (#t.rss - MEM_FROM), N, table.concat(t.rss, ", "),
            t.lua_kb and #t.lua_kb > 0 and ("; Lua heap " .. table.concat(t.lua_kb, ", ") .. " KB") or ""))
      end
    end
  end
  for _, id in ipairs({ "object54", "module54" }) do
    local a = results.https and results.https[id] and results.https[id].main
    local b = results.https and results.https.luasocket and results.https.luasocket.main
    if a and b and a.rates and b.rates then
      local x = median(a.rates) / median(b.rates)
      check("HTTPS throughput of " .. BY_ID[id].label .. " ≥ 10× LuaSocket+LuaSec", x >= 10,
        string.format("%.1f× (medians)", x))
    end
  end

  -- 8. the call trees of the module's entry points
  local prof = {}
  if CALLGRIND then
    for _, p in ipairs(protos) do
      for _, id in ipairs({ "object54", "module54", "poll54" }) do
        local x = results[p][id]
        for _, root in ipairs(x and x.cg and x.cg.file1 and BY_ID[id].roots or {}) do
          local tree, entry = CG.profile(x.cg, root, fmt_int)
          if entry then
            prof[#prof + 1] = string.format("%s, %s: `%s` %s Ir/req inclusive (the row: %s Ir/req).", id, p:upper(), root,
              fmt_int(entry), fmt_int(x.ir))
            prof[#prof + 1] = ""
            prof[#prof + 1] = "```"
            for _, l in ipairs(tree) do prof[#prof + 1] = l end
            prof[#prof + 1] = "```"
            prof[#prof + 1] = ""
          end
        end
      end
    end
  end

  -- commands
  local cmds = {}
  for _, c in ipairs(CLIENTS) do
    if wanted(c) then
      local n = (c.kind == "ref" or c.kind == "lua") and N or N_SLOW
      local text = c.show and c.show(n, RUNS) or shown_cmd(c, "<BASE>", "<CA|->", n, RUNS)
      cmds[#cmds + 1] = string.format("- `%s`%s: `%s`", c.id, c.scale and " (callgrind only)" or "", text)
    end
  end
  cmds[#cmds + 1] = string.format("- callgrind: `valgrind --tool=callgrind --callgrind-out-file=F [--smc-check=all for LuaJIT] <command with RUNS=0 and N=N1|N2>`; Ir/req = (Ir(N2) − Ir(N1)) / (N2 − N1), N1=%d N2=%d (LuaSocket %d/%d; the libcurl options table half these); the rows with a target: the median of %d such pairs (the range in brackets); curl CLI: median Ir of %d single-request processes (¹ = whole process per request)",
    CG_N1, CG_N2, CG_SLOW_N1, CG_SLOW_N2, CG_REPEAT, CG_CURL)
  if PIN_CLIENT ~= "" then
    cmds[#cmds + 1] = string.format("- every client command above (and under callgrind) runs as `%s<command>`; nginx as `taskset -c %s nginx ...`",
      PIN_CLIENT, SERVER_CPU)
  end

  local function cmd1(s) return trim(capture(s .. " 2>&1 | head -1")) end
  local machine = string.format("%s CPUs, %s, %s, Linux %s", trim(capture("nproc")), trim(capture("uname -m")),
    trim(capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")), trim(capture("uname -r")))
  local versions = string.format("%s; %s; %s; %s; %s", cmd1("lua5.4 -v"), cmd1("luajit -v"),
    cmd1("curl --version"), cmd1("nginx -v"), cmd1("valgrind --version"))
  local date = os.date("!%Y-%m-%d %H:%M UTC", started)

  local md = {}
  local function m(s) md[#md + 1] = s or "" end
  m("# smsend-lua bench results")
  m()
  m("- date: " .. date .. " (measurements took " .. (os.time() - started) .. " s)")
  m("- machine: " .. machine .. (PIN_CLIENT ~= "" and string.format("; clients pinned to CPU %s, nginx to CPU %s (taskset)",
    CLIENT_CPU, SERVER_CPU) or "; not pinned (fewer than 2 CPUs, no taskset, or BENCH_PIN=0)"))
  m("- software: " .. versions)
  m(string.format("- settings: `make bench BENCH_N=%d BENCH_N_SLOW=%d BENCH_RUNS=%d BENCH_MEM_RUNS=%d BENCH_CG_N1=%d BENCH_CG_N2=%d BENCH_CG_SLOW_N1=%d BENCH_CG_SLOW_N2=%d BENCH_CG_CURL=%d BENCH_CG_REPEAT=%d BENCH_SCALE=%d BENCH_LIBCURL_OPTS=%d BENCH_PIN=%d BENCH_UNPINNED=%d`",
    N, N_SLOW, RUNS, MEM_RUNS, CG_N1, CG_N2, CG_SLOW_N1, CG_SLOW_N2, CG_CURL, CG_REPEAT, SCALE and 1 or 0, LIBCURL_OPTS and 1 or 0,
    PIN and 1 or 0, UNPINNED and 1 or 0))
  m("- server: nginx, 1 worker, `return 200 '{\"status\":\"OK\"}'` on 127.0.0.1; HTTPS with a P-256 certificate from a CA made by the bench (TLS 1.3)")
  m("- request: `POST <BASE>2fa/request` with `" .. BODY .. "` (" .. #BODY .. " bytes; messageBody 20 bytes), from `bench/payload.lua`")
  m(string.format("- req/s and CPU: %d rounds; each round runs every row once as a new process (one warm-up request, then %d timed requests; LuaSocket and curl CLI %d), in a rotated order; median over the rounds. × bare: the ratio to the bare loop within each round, median over the rounds (for req/s higher is better, for CPU lower). CPU: process CPU time (user+sys, all threads; for the curl CLI the shell loop and all its children) per request", RUNS, N, N_SLOW))
  m(string.format("- peak RSS: VmHWM (curl CLI: the largest process). RSS growth: one process makes %d runs of %d requests; VmRSS after two full GCs (an op's finalizer runs in the first), after run %d vs after run %d (the earlier runs warm up the allocator, the caches and the GC's pace)", MEM_RUNS, N, MEM_FROM, MEM_RUNS))
  m("- connections and handshakes: distinct nginx `$connection` serials seen for the longest single process of the row (the memory run for the libcurl rows), against the sequential requests it made; TLS: `$ssl_session_reused` `.` = full handshake, `r` = resumed")
  m(string.format("- Ir/req: client-side instructions per request from callgrind, start-up cancelled by difference; the figure to compare (the machine is shared and noisy). How often libcurl finds the answer not there yet depends on timing, which moves a row's count by up to ~2%%: the rows with a target take the median of %d pairs of runs, and show the range", CG_REPEAT))
  m()
  m("## What each row sets")
  m()
  for _, c in ipairs(CLIENTS) do
    if c.sets and wanted(c) then m(string.format("- **%s** (`%s`): %s", c.label, c.id, c.sets)) end
  end
  m()
  m("## Per request")
  m()
  for _, l in ipairs(lines) do m(l) end
  m()
  m("¹ whole `curl` process per request (start-up included: that is what a shell script pays).")
  m()
  if #free > 0 then
    m(string.format("req/s and CPU above: clients on CPU %s, nginx on CPU %s. The same rounds with nothing pinned, right after: the scheduler then places each process anew, on nginx's CPU or not, so that the rounds spread more (the ranges after each ratio are the rounds' smallest and largest):", CLIENT_CPU, SERVER_CPU))
    m()
    for _, l in ipairs(free) do m(l) end
    m()
  end
  m("## Targets")
  m()
  for _, l in ipairs(checks) do m(l) end
  m()
  -- a section of the results: its title, a paragraph, then the lines of each list given
  local function section(title, intro, ...)
    m("## " .. title)
    m()
    m(intro)
    m()
    for _, list in ipairs({ ... }) do
      for _, l in ipairs(list) do m(l) end
      m()
    end
  end
  if #scale > 0 then
    section("Scale (callgrind)", "Instructions per request as the load changes shape. Ops in flight: one client, a window of K pollable ops (each finished op replaced at once by a new one; K = 1 is the plain loop of the main table), one `op:poll()` on the oldest op per pass (it drives the client's transport and so every op), `op:done()` on the others, and a wait (`poll(2)` through `bench/pollwait.c`) on the client's descriptor when a pass finished none; a client keeps at most 4 connections (`HTTP_MAX_HOST_CONNECTIONS`), the other ops wait in its own queue (src/http.c), not in libcurl's. Configurations: `smsend.request_pin` cycling over M `access_token`s of the same length (the cache holds up to 8). messageBody: 20 against 1 600 bytes (the largest allowed), the bare loop sending the same body.", scale)
  end
  if #split > 0 then
    section("Where the instructions go (callgrind)", "Self Ir per request by object (N2 − N1 difference), and under each Lua 5.4 row its difference from the bare loop. Then, for rows that differ by one thing (the module against the bare loop, module level and pollable against `client:request_pin`, a long message, ops in flight), the functions whose self Ir per request differ most (libcurl, libssl, libcrypto and the `lua5.4` binary are stripped: their static functions show as addresses; the next table prices libcurl's options by cause).", split, spots)
  end
  if #opts > 0 then
    section("libcurl's options, one at a time (callgrind)", string.format("The bare loop with one set-up change at a time (`bench/options.c`; N1=%d, N2=%d), then all that the module sets, driven as the module drives it. This prices the module's libcurl choices by themselves, without Lua or the binding; the `−` column is against the first row (the bare loop built as `options.c`).", math.max(1, CG_N1 // 2), math.max(2, CG_N2 // 2)), opts)
  end
  m("## OpenResty")
  m()
  -- The OpenResty part lives in bench/openresty (its own nginx, its own knobs): run its entry point
  -- with BENCH_OUT and BENCH_CA, without this driver's BENCH_* settings (BENCH_RUNS means something
  -- else there; BENCH_OPENRESTY_RUNS is passed on as its BENCH_RUNS). Its stdout is the section.
  local or_sh, or_lua = ROOT .. "/bench/openresty/run.sh", ROOT .. "/bench/openresty/run.lua"
  local or_cmd = read_file(or_sh) and ("sh " .. shq(or_sh)) or (read_file(or_lua) and ("lua5.4 " .. shq(or_lua)))
  if or_cmd and OPENRESTY then
    local unset = {}
    for _, v in ipairs({ "BENCH_N", "BENCH_N_SLOW", "BENCH_RUNS", "BENCH_MEM_RUNS", "BENCH_CG_N1", "BENCH_CG_N2",
      "BENCH_CG_SLOW_N1", "BENCH_CG_SLOW_N2", "BENCH_CG_CURL", "BENCH_JOBS", "BENCH_CALLGRIND", "BENCH_ONLY",
      "BENCH_PROTOS", "BENCH_README", "BENCH_BARE", "BENCH_LIMIT", "BENCH_LUA54_CPATH", "BENCH_LUAJIT_CPATH",
      "BENCH_ROOT", "BENCH_OPENRESTY", "BENCH_OPENRESTY_RUNS", "BENCH_SCALE", "BENCH_PIN", "BENCH_UNPINNED",
      "BENCH_LUA54_WAIT", "BENCH_LUAJIT_WAIT", "BENCH_OPTIONS_BIN", "BENCH_LIBCURL_OPTS", "BENCH_CG_REPEAT" }) do
      unset[#unset + 1] = "-u " .. v
    end
    local runs = env("BENCH_OPENRESTY_RUNS", nil)
    say("bench: OpenResty part (%s)", or_cmd)
    local t0 = os.time()
    local out, ok = capture(string.format("env %s BENCH_OUT=%s BENCH_CA=%s%s %s", table.concat(unset, " "),
      shq(OUT), shq(ca), runs and (" BENCH_RUNS=" .. shq(runs)) or "", or_cmd))
    if ok then
      m(trim(out))
      m()
      m(string.format("(run by `make bench` through `%s`, %d s)", or_cmd, os.time() - t0))
    else
      m("`" .. or_cmd .. "` failed:\n\n```\n" .. out .. "\n```")
    end
  elseif or_cmd then
    m("OpenResty: skipped (BENCH_OPENRESTY=0); see bench/openresty.")
  else
    m("OpenResty: see bench/openresty (not yet measured).")
  end
  m()
  if #prof > 0 then
    section("Hot path (callgrind)", "Inclusive Ir per request (difference of the N1 and N2 runs) below the module's Lua entry points; `×k` = calls per request. Functions of smsend.so are expanded.", prof)
  end
  m("## Request bytes")
  m()
  if #wire > 0 then
    m("Each libcurl row's request, captured raw by a one-shot server over HTTP (header names in the order sent):")
    m()
    for _, w in ipairs(wire) do
      local names = {}
      for _, h in ipairs(w.r.headers) do names[#names + 1] = h:match("^([^:]+)") end
      m(string.format("- `%s`: %d bytes — `%s`; %s; body %d bytes", w.c.id, w.r.bytes, w.r.line or "?",
        table.concat(names, ", "), #(w.r.body or "")))
    end
    m()
  end
  local lens = {}
  for _, p in ipairs(protos) do
    for _, c in ipairs(CLIENTS) do
      local r = results[p][c.id]
      if r and r.log and r.log.lengths then
        local ks = {}
        for k, v in pairs(r.log.lengths) do ks[#ks + 1] = k .. (v == r.log.requests and "" or ("×" .. v)) end
        lens[#lens + 1] = string.format("%s/%s %s", c.id, p, table.concat(ks, ","))
      end
    end
  end
  m("Request sizes seen by nginx (`$request_length`, bytes): " .. table.concat(lens, "; "))
  m()
  m("## Commands")
  m()
  m("Run from the repository root; `<BASE>` is `http://127.0.0.1:PORT/API/v1.0/REST/` or the `https://` one, `<CA|->` the bench CA (`-` for HTTP), `<BODY>` the JSON above.")
  m()
  for _, l in ipairs(cmds) do m(l) end
  m()
  local text = table.concat(md, "\n")
  write_file(OUT .. "/results.md", text)
  io.stdout:write(text)
  io.stdout:flush()
  say("bench: wrote %s/results.md", OUT)

  if UPDATE_README then
    local path = ROOT .. "/docs/benchmarks.md"
    local readme = read_file(path)
    local b, e = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
    if readme and readme:find(b, 1, true) and readme:find(e, 1, true) then
      local i = readme:find(b, 1, true)
      local j = readme:find(e, 1, true)
      local body = text:gsub("^# [^\n]*\n\n", "")
      -- the call trees stay in results.md; the line above each is kept
      body = body:gsub("\n```\n  [%w_]+ %[smsend%.so%].-\n```\n", "\n(call tree: build/bench/results.md)\n")
      write_file(path, readme:sub(1, i + #b - 1) .. "\n" .. body:gsub("\n## ", "\n### ") .. "\n" .. readme:sub(j))
      say("bench: updated %s", path)
    end
  end
end

local ok, err = pcall(main)
stop_nginx()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
