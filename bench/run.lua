-- run.lua — `make bench`: starts a local nginx that answers the 2FA endpoints at once (HTTP and
-- HTTPS with a CA made here), runs every client against it, measures and prints the table, and
-- writes it as Markdown to $BENCH_OUT/results.md. Run from the repository root with lua5.4.
-- Settings come from the environment (bench/bench.mk passes them through); see docs/benchmarks.md.

local socket = require "socket"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end
local function envn(name, default) return math.tointeger(tonumber(env(name, default))) or default end

local ROOT = env("BENCH_ROOT", ".")
local OUT = env("BENCH_OUT", "build/bench")
local LIMIT_BIN = env("BENCH_LIMIT", OUT .. "/limit")
local LUA54_CPATH = env("BENCH_LUA54_CPATH", "build/lua5.4/?.so")
local LUAJIT_CPATH = env("BENCH_LUAJIT_CPATH", "build/luajit/?.so")
local N = envn("BENCH_N", 2000)              -- requests per timed run, libcurl clients
local N_SLOW = envn("BENCH_N_SLOW", 100)     -- requests per timed run, LuaSocket and curl CLI
local RUNS = envn("BENCH_RUNS", 5)           -- rounds: one timed run per client each (median reported)
local MEM_RUNS = math.max(3, envn("BENCH_MEM_RUNS", 5)) -- runs of N in one process for the memory-growth check
local CG_N1 = envn("BENCH_CG_N1", 200)       -- callgrind request counts, libcurl clients
local CG_N2 = envn("BENCH_CG_N2", 1200)
local CG_SLOW_N1 = envn("BENCH_CG_SLOW_N1", 10) -- callgrind request counts, LuaSocket
local CG_SLOW_N2 = envn("BENCH_CG_SLOW_N2", 60)
local CG_CURL = envn("BENCH_CG_CURL", 3)      -- curl CLI: processes measured, median taken
-- callgrind runs in parallel. 1 by default: with nginx short of a core, libcurl polls more often
-- before the answer is there, which moves the counts by up to 1-2%; alone they repeat within 0.05%.
local JOBS = envn("BENCH_JOBS", 1)
local CALLGRIND = env("BENCH_CALLGRIND", "1") ~= "0"
local ONLY = env("BENCH_ONLY", nil)           -- comma list of client ids, default all
local PROTOS = env("BENCH_PROTOS", "http,https")
local UPDATE_README = env("BENCH_README", "0") == "1"
local OPENRESTY = env("BENCH_OPENRESTY", "1") ~= "0"  -- run bench/openresty's part when it exists

-- helpers -------------------------------------------------------------------------------------

-- Shell, file and port helpers shared with the sandbox launcher (found from this file's location).
local function script_dir()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or "bench/run.lua"
  return file:match("^(.*)/[^/]*$") or "."
end
local sandbox = dofile(script_dir() .. "/../sandbox/launch.lua")

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
  local out, ok = capture("nginx -p " .. shq(p .. "/") .. " -c " .. shq(p .. "/nginx.conf") .. " -e " ..
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

-- Each client: id, label, kind ("libcurl" = keep-alive loop, "slow"), and cmd(base, ca, n, runs).
local function lua_cmd(interp, cpath, mode)
  return function(base, ca, n, runs)
    return string.format("%s %s %s %s %s %d %d", interp, shq(CLIENT_LUA), mode, shq(base), shq(ca or "-"), n, runs),
      "SMSEND_CPATH=" .. shq(cpath) .. " "
  end
end

-- the command line with its environment first (so that a valgrind prefix goes in between)
local function full_cmd(c, prefix, ...)
  local cmd, envs = c.cmd(...)
  return (envs or "") .. (prefix or "") .. cmd
end

local CLIENTS = {
  { id = "c", label = "C libcurl keep-alive loop (the limit)", kind = "libcurl",
    cmd = function(base, ca, n, runs)
      return string.format("%s %s %s %d %d", shq(LIMIT_BIN), shq(base), shq(ca or "-"), n, runs)
    end },
  { id = "object54", label = "client:request_pin, Lua 5.4", kind = "libcurl",
    cmd = lua_cmd("lua5.4", LUA54_CPATH, "object") },
  { id = "module54", label = "smsend.request_pin, Lua 5.4", kind = "libcurl",
    cmd = lua_cmd("lua5.4", LUA54_CPATH, "module") },
  { id = "objectjit", label = "client:request_pin, LuaJIT", kind = "libcurl", jit = true,
    cmd = lua_cmd("luajit", LUAJIT_CPATH, "object") },
  { id = "modulejit", label = "smsend.request_pin, LuaJIT", kind = "libcurl", jit = true,
    cmd = lua_cmd("luajit", LUAJIT_CPATH, "module") },
  { id = "luasocket", label = "LuaSocket socket.http (+ LuaSec for HTTPS) + lua-cjson, Lua 5.4, TCP_NODELAY", kind = "slow",
    cmd = lua_cmd("lua5.4", LUA54_CPATH, "luasocket") },
  { id = "curlcli", label = "curl CLI, one process per request", kind = "cli",
    cmd = function(base, ca, n, _)
      return string.format("sh %s %s %s %d", shq(CURL_LOOP), shq(base), shq(ca or "-"), n)
    end },
  -- scale only: the Lua side of a binding with no C and no I/O; its Ir are added to the C limit's
  { id = "loop54", label = "(scale) Lua 5.4 loop: request table in, result table out, no I/O", kind = "floor",
    cmd = lua_cmd("lua5.4", LUA54_CPATH, "loop") },
}

local selected = {}
if ONLY then for id in ONLY:gmatch("[^,%s]+") do selected[id] = true end end
local function wanted(c) return not ONLY or selected[c.id] or c.id == "c" end

local protos = {}
for p in PROTOS:gmatch("[^,%s]+") do protos[#protos + 1] = p end

-- throughput runs -------------------------------------------------------------------------------

local function parse_runs(out)
  local r = { wall = {}, cpu = {}, rss = {}, rate = {} }
  for i, w, c, rss in out:gmatch("run (%d+) wall=([%d.]+) cpu=([%d.]+) rss_kb=(%-?%d+)") do
    r.wall[#r.wall + 1] = tonumber(w)
    r.cpu[#r.cpu + 1] = tonumber(c)
    r.rss[#r.rss + 1] = tonumber(rss)
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
    local out, ok = capture("/usr/bin/time -f '%e %U %S %M' -o " .. shq(tf) .. " " .. cmd .. " 2>&1")
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

-- callgrind ---------------------------------------------------------------------------------------

local CG = OUT .. "/callgrind"

local function cg_file_ir(path)
  local s = read_file(path)
  if not s then return nil end
  local v = s:match("\nsummary:%s*(%d+)") or s:match("\ntotals:%s*(%d+)")
  return tonumber(v)
end

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
      local f = string.format("%s/%s.%d.out", CG, tag, k)
      jobs[#jobs + 1] = { file = f, log = f .. ".log",
        cmd = "BENCH_VG_OUT=" .. shq(f) .. " sh " .. shq(CURL_LOOP) .. " " .. shq(base) .. " " .. shq(ca or "-") .. " 1" }
    end
    return jobs, function()
      local irs = {}
      for _, j in ipairs(jobs) do irs[#irs + 1] = cg_file_ir(j.file) end
      if #irs ~= #jobs then return nil end
      return median(irs), { per_process = true }
    end
  end
  local n1, n2 = CG_N1, CG_N2
  if c.kind == "slow" then n1, n2 = CG_SLOW_N1, CG_SLOW_N2 end
  for _, n in ipairs({ n1, n2 }) do
    local f = string.format("%s/%s.n%d.out", CG, tag, n)
    jobs[#jobs + 1] = { file = f, log = f .. ".log", n = n, cmd = full_cmd(c, vg_prefix(c, f), base, ca, n, 0) }
  end
  return jobs, function()
    local a, b = cg_file_ir(jobs[1].file), cg_file_ir(jobs[2].file)
    if not a or not b then return nil end
    return (b - a) / (n2 - n1), { n1 = n1, n2 = n2, ir1 = a, ir2 = b, file1 = jobs[1].file, file2 = jobs[2].file }
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

-- The call tree of a callgrind file, read directly (callgrind_annotate takes minutes on a busy
-- machine): incl[fn] = inclusive Ir (self + the calls it makes), edges[fn][callee] = { ir, calls }
-- with the inclusive cost of those calls, objs[fn] = the object's file name. Functions are keyed by
-- name. Needs the default output (events: Ir, --dump-instr=no, no --collect-jumps).
local tree_cache = {}
local function cg_tree(file)
  if tree_cache[file] then return table.unpack(tree_cache[file]) end
  local fn_names, ob_names = {}, {}
  local function name_of(spec, names) -- "(id) name" defines, "(id)" refers, "name" is plain
    local id, name = spec:match("^%((%d+)%)%s*(.*)$")
    if not id then return spec end
    if name ~= "" then names[id] = name return name end
    return names[id] or ("?" .. id)
  end
  local self_ir, edges, objs = {}, {}, {}
  local ob, fn, cfn, calls
  for line in io.lines(file) do
    local b = line:byte(1)
    if calls then -- the cost line after calls=: inclusive cost of those calls
      local ir = tonumber(line:match("^%S+%s+(%d+)")) or 0
      local e = edges[fn][cfn]
      if not e then e = { ir = 0, calls = 0 } edges[fn][cfn] = e end
      e.ir, e.calls = e.ir + ir, e.calls + calls
      calls = nil
    elseif b and ((b >= 48 and b <= 57) or b == 43 or b == 45 or b == 42) then -- "pos cost": self cost
      if fn then self_ir[fn] = (self_ir[fn] or 0) + (tonumber(line:match("^%S+%s+(%d+)")) or 0) end
    elseif line:sub(1, 3) == "fn=" then
      fn = name_of(line:sub(4), fn_names)
      edges[fn] = edges[fn] or {}
      objs[fn] = objs[fn] or ob
    elseif line:sub(1, 3) == "ob=" then
      ob = name_of(line:sub(4), ob_names):match("([^/]+)$")
    elseif line:sub(1, 4) == "cob=" then
      name_of(line:sub(5), ob_names)
    elseif line:sub(1, 4) == "cfn=" then
      cfn = name_of(line:sub(5), fn_names)
    elseif line:sub(1, 6) == "calls=" then
      calls = tonumber(line:match("^calls=(%d+)")) or 0
    end
  end
  local incl = {}
  for f, es in pairs(edges) do
    local v = self_ir[f] or 0
    for callee, e in pairs(es) do if callee ~= f then v = v + e.ir end end
    incl[f] = v
  end
  tree_cache[file] = { incl, edges, objs }
  return incl, edges, objs
end

-- curl_easy_perform's inclusive Ir per request (N2−N1 difference), or nil
local function cg_perform(info)
  if not (info and info.file1) then return nil end
  local i1 = cg_tree(info.file1)
  local i2 = cg_tree(info.file2)
  if not i2.curl_easy_perform then return nil end
  return (i2.curl_easy_perform - (i1.curl_easy_perform or 0)) / (info.n2 - info.n1)
end

-- Per-request call tree below `entry`, by difference of the N1 and N2 files.
local function cg_profile(info, entry, fmt_int)
  local i1, e1 = cg_tree(info.file1)
  local i2, e2, objs = cg_tree(info.file2)
  local function label_of(fn) return fn .. " [" .. (objs[fn] or "?") .. "]" end
  local dn = info.n2 - info.n1
  local lines = {}
  local root = i2[entry] and entry
  if not root then return lines, nil end
  -- A function called from several places shows its callees in proportion to this path's share.
  local function walk(fn, depth, per, label)
    local kids = {}
    local all = ((i2[fn] or 0) - (i1[fn] or 0)) / dn
    local share = (all > 0 and per < all) and per / all or 1
    for callee, e in pairs(e2[fn] or {}) do
      local o = (e1[fn] or {})[callee] or { ir = 0, calls = 0 }
      local ir = (e.ir - o.ir) / dn * share
      if ir >= 30 then kids[#kids + 1] = { name = callee, ir = ir, calls = (e.calls - o.calls) / dn * share } end
    end
    table.sort(kids, function(x, y) return x.ir > y.ir end)
    local listed = 0
    for _, k in ipairs(kids) do listed = listed + k.ir end
    local function row(d, text, v)
      local left = string.rep("  ", d) .. text
      lines[#lines + 1] = left .. string.rep(" ", math.max(1, 64 - utf8.len(left))) .. string.format("%9s", fmt_int(v))
    end
    row(depth, label or label_of(fn), per)
    if per - listed >= 30 and #kids > 0 then row(depth + 1, "(self, and calls under 30 Ir)", per - listed) end
    for _, k in ipairs(kids) do
      local label = label_of(k.name) .. (k.calls >= 1.5 and string.format(" ×%g", math.floor(k.calls * 10 + 0.5) / 10) or "")
      if objs[k.name] == "smsend.so" and depth < 5 and k.name ~= fn then
        walk(k.name, depth + 1, k.ir, label)
      else
        row(depth + 1, label, k.ir)
      end
    end
  end
  walk(root, 1, (i2[root] - (i1[root] or 0)) / dn)
  local perform
  if i2.curl_easy_perform then perform = (i2.curl_easy_perform - (i1.curl_easy_perform or 0)) / dn end
  return lines, (i2[root] - (i1[root] or 0)) / dn, perform
end

-- formatting ----------------------------------------------------------------------------------------

local function fmt_int(v)
  if not v then return "—" end
  local s = string.format("%d", math.floor(v + 0.5))
  local r = s:reverse():gsub("(%d%d%d)", "%1 "):reverse()
  return trim(r)
end
local function fmt(f, v) if not v then return "—" end return string.format(f, v) end

-- main ----------------------------------------------------------------------------------------------

local function main()
  run("mkdir -p " .. shq(OUT) .. " " .. shq(CG))
  local started = os.time()
  say("bench: certificates, nginx")
  local ca = abs(make_certs())
  local http_port, https_port = free_port(), free_port()
  while https_port == http_port do https_port = free_port() end
  start_nginx(http_port, https_port)
  local bases = {
    http = string.format("http://127.0.0.1:%d/API/v1.0/REST/", http_port),
    https = string.format("https://127.0.0.1:%d/API/v1.0/REST/", https_port),
  }
  local cas = { http = nil, https = ca }

  local results = {} -- results[proto][id] = { tp = ..., ir = ..., cg = ... }
  for _, p in ipairs(protos) do results[p] = {} end

  -- 1. throughput, side by side: each round runs every client once (one process: a warm-up
  --    request, then one timed run of N), in an order rotated every round; the ratios to the C
  --    limit are taken within a round, then the median over the rounds.
  for _, p in ipairs(protos) do
    local list = {}
    for _, c in ipairs(CLIENTS) do
      if wanted(c) and c.kind ~= "floor" then
        list[#list + 1] = c
        results[p][c.id] = { rates = {}, cpus = {}, xrate = {}, xcpu = {}, log = {}, hwm = 0 }
      end
    end
    for round = 1, RUNS do
      say("bench: %s round %d/%d", p, round, RUNS)
      local this = {}
      for k = 0, #list - 1 do
        local c = list[(k + round - 1) % #list + 1]
        local n = c.kind == "libcurl" and N or N_SLOW
        local res = one_process(c, p, bases[p], cas[p], https_port, n, 1)
        local r = results[p][c.id]
        r.n, r.cmd = n, res.cmd
        this[c.id] = { rate = n / res.wall[1], cpu = res.cpu[1] / n }
        r.rates[#r.rates + 1] = this[c.id].rate
        r.cpus[#r.cpus + 1] = this[c.id].cpu
        r.hwm = math.max(r.hwm, res.hwm or 0)
        add_log(r.log, res.log)
        if not r.seq or res.log.requests > r.seq.requests then r.seq = res.log end
      end
      for id, t in pairs(this) do
        if this.c then
          local r = results[p][id]
          r.xrate[#r.xrate + 1] = t.rate / this.c.rate
          r.xcpu[#r.xcpu + 1] = t.cpu / this.c.cpu
        end
      end
    end
    -- 1b. memory: MEM_RUNS runs of N in one process, VmRSS (after a full GC) after each run
    for _, c in ipairs(list) do
      if c.kind == "libcurl" then
        say("bench: %s memory %s", p, c.id)
        local res = one_process(c, p, bases[p], cas[p], https_port, N, MEM_RUNS)
        local r = results[p][c.id]
        r.rss = res.rss
        r.hwm = math.max(r.hwm, res.hwm or 0)
        add_log(r.log, res.log)
        if not r.seq or res.log.requests > r.seq.requests then r.seq = res.log end
      end
    end
  end

  -- 2. callgrind, JOBS at a time (instruction counts do not depend on load)
  local finishers, all_jobs = {}, {}
  if CALLGRIND then
    for _, p in ipairs(protos) do
      for _, c in ipairs(CLIENTS) do
        if wanted(c) and not (c.kind == "floor" and p ~= protos[1]) then
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
      if f.c.kind == "libcurl" then results[f.p][f.c.id].perform = cg_perform(info) end
    end
  end
  stop_nginx()

  -- 3. table
  local floor_ir = CALLGRIND and results[protos[1]].loop54 and results[protos[1]].loop54.ir
  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("| client | proto | req/s (median) | × C | CPU µs/req | × C | peak RSS MB | RSS growth KB | TCP conns / sequential requests | TLS handshakes (full+resumed) | Ir/req (callgrind) | × C | × C, libcurl equalised ² |")
  add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
  -- the ratio with the client's own curl_easy_perform cost replaced by the C limit's (see ²)
  local function eq_ratio(r, base_r)
    if not (r and r.ir and r.perform and base_r and base_r.ir and base_r.perform) then return nil end
    return (r.ir - r.perform + base_r.perform) / base_r.ir
  end
  for _, p in ipairs(protos) do
    local base_r = results[p].c
    for _, c in ipairs(CLIENTS) do
      local r = results[p][c.id]
      if r and c.kind ~= "floor" then
        local ir_x = r.ir and base_r and base_r.ir and r.ir / base_r.ir
        local growth = r.rss and #r.rss >= 3 and (r.rss[#r.rss] - r.rss[2])
        local conns, tls = "—", "—"
        if r.seq then
          conns = string.format("%d / %d", r.seq.conns, r.seq.requests)
          if p == "https" then tls = string.format("%d (%d+%d)", r.seq.full + r.seq.resumed, r.seq.full, r.seq.resumed) end
        end
        add(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
          c.label, p:upper(), fmt_int(r.rates and median(r.rates)), fmt("%.2f", r.xrate and median(r.xrate)),
          fmt("%.1f", r.cpus and median(r.cpus) and median(r.cpus) * 1e6), fmt("%.2f", r.xcpu and median(r.xcpu)),
          fmt("%.1f", r.hwm and r.hwm > 0 and r.hwm / 1024 or nil), growth and string.format("%+d", growth) or "n/a",
          conns, tls, fmt_int(r.ir) .. ((r.cg and r.cg.per_process) and " ¹" or ""), fmt("%.3f", ir_x),
          fmt("%.3f", eq_ratio(r, base_r))))
      end
    end
    if floor_ir and base_r and base_r.ir and p == protos[1] then
      add(string.format("| %s | %s | — | — | — | — | — | — | — | — | C + %s | %.3f | — |", CLIENTS[#CLIENTS].label,
        p:upper(), fmt_int(floor_ir), (base_r.ir + floor_ir) / base_r.ir))
    end
  end

  -- targets
  local checks = {}
  local function check(name, ok, detail)
    checks[#checks + 1] = string.format("- [%s] %s — %s", ok and "x" or " ", name, detail)
  end
  for _, p in ipairs(protos) do
    local r = results[p]
    if r.c and r.c.ir then
      if r.object54 and r.object54.ir then
        local x = r.object54.ir / r.c.ir
        check("client:request_pin (Lua 5.4) ≤ 1.10× C Ir/req, " .. p:upper(), x <= 1.10,
          string.format("%.3f× (%s vs %s Ir/req); libcurl equalised %s×", x, fmt_int(r.object54.ir), fmt_int(r.c.ir),
            fmt("%.3f", eq_ratio(r.object54, r.c))))
      end
      if r.module54 and r.module54.ir then
        local x = r.module54.ir / r.c.ir
        check("smsend.request_pin (Lua 5.4) ≤ 1.15× C Ir/req, " .. p:upper(), x <= 1.15,
          string.format("%.3f× (%s vs %s Ir/req); libcurl equalised %s×", x, fmt_int(r.module54.ir), fmt_int(r.c.ir),
            fmt("%.3f", eq_ratio(r.module54, r.c))))
      end
    end
    for _, id in ipairs({ "object54", "module54", "objectjit", "modulejit" }) do
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
      if t and t.rss and #t.rss >= 3 then
        local g = t.rss[#t.rss] - t.rss[2]
        check(id .. " " .. p:upper() .. ": no memory growth across runs", g <= 8,
          string.format("VmRSS %+d KB from run 2 to run %d (%d requests; at most 8 KB, two pages, allowed); after each run of %d: %s KB",
            g, #t.rss, N * (#t.rss - 2), N, table.concat(t.rss, ", ")))
      end
    end
  end
  if results.https and results.https.object54 and results.https.luasocket and results.https.object54.rates then
    local x = median(results.https.object54.rates) / median(results.https.luasocket.rates)
    check("HTTPS throughput of client:request_pin (Lua 5.4) ≥ 10× LuaSocket+LuaSec", x >= 10,
      string.format("%.1f× (medians)", x))
  end
  if results.https and results.https.module54 and results.https.luasocket and results.https.module54.rates then
    local x = median(results.https.module54.rates) / median(results.https.luasocket.rates)
    check("HTTPS throughput of smsend.request_pin (Lua 5.4) ≥ 10× LuaSocket+LuaSec", x >= 10,
      string.format("%.1f× (medians)", x))
  end

  -- profile of the module's hot path: per-request call trees below the Lua entry points
  local prof = {}
  if CALLGRIND then
    for _, p in ipairs(protos) do
      local r = results[p]
      local c_perform
      if r.c and r.c.cg and r.c.cg.file1 then _, _, c_perform = cg_profile(r.c.cg, "main", fmt_int) end
      for _, it in ipairs({ { "object54", "m_request_pin" }, { "module54", "module_call" } }) do
        local x = r[it[1]]
        if x and x.cg and x.cg.file1 and r.c and r.c.ir then
          local tree, entry, perform = cg_profile(x.cg, it[2], fmt_int)
          if entry then
            prof[#prof + 1] = string.format("%s, %s: %s Ir/req = C limit %s + %s. Inside %s: %s Ir, of which curl_easy_perform %s (C limit: %s), so the binding's own C work (with the Lua C API calls it makes) is %s Ir/req.",
              it[1], p:upper(), fmt_int(x.ir), fmt_int(r.c.ir), fmt_int(x.ir - r.c.ir), it[2], fmt_int(entry),
              fmt_int(perform), fmt_int(c_perform), fmt_int(entry - (perform or 0)))
            if floor_ir then
              prof[#prof + 1] = string.format("    (the Lua loop floor is %s Ir/req: beyond C limit + floor, the module adds %s Ir/req)",
                fmt_int(floor_ir), fmt_int(x.ir - r.c.ir - floor_ir))
            end
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
      cmds[#cmds + 1] = string.format("- `%s`: `%s`", c.id, c.kind == "cli" and full_cmd(c, nil, "<BASE>", "<CA>", N_SLOW) or
        full_cmd(c, nil, "<BASE>", "<CA|->", c.kind == "libcurl" and N or N_SLOW, RUNS))
    end
  end
  cmds[#cmds + 1] = string.format("- callgrind: `valgrind --tool=callgrind --callgrind-out-file=F [--smc-check=all for LuaJIT] <command with RUNS=0 and N=N1|N2>`; Ir/req = (Ir(N2) − Ir(N1)) / (N2 − N1), N1=%d N2=%d (LuaSocket %d/%d); curl CLI: median Ir of %d single-request processes (¹ = whole process per request)",
    CG_N1, CG_N2, CG_SLOW_N1, CG_SLOW_N2, CG_CURL)

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
  m("- date: " .. date .. " (took " .. (os.time() - started) .. " s)")
  m("- machine: " .. machine)
  m("- software: " .. versions)
  m(string.format("- settings: `make bench BENCH_N=%d BENCH_N_SLOW=%d BENCH_RUNS=%d BENCH_MEM_RUNS=%d BENCH_CG_N1=%d BENCH_CG_N2=%d BENCH_CG_SLOW_N1=%d BENCH_CG_SLOW_N2=%d BENCH_CG_CURL=%d`",
    N, N_SLOW, RUNS, MEM_RUNS, CG_N1, CG_N2, CG_SLOW_N1, CG_SLOW_N2, CG_CURL))
  m("- server: nginx, 1 worker, `return 200 '{\"status\":\"OK\"}'` on 127.0.0.1; HTTPS with a P-256 certificate from a CA made by the bench (TLS 1.3)")
  m(string.format("- req/s and CPU: %d rounds; each round runs every client once as a new process (one warm-up request, then %d timed requests; LuaSocket and curl CLI %d), in a rotated order; median over the rounds. × C: the ratio to the C limit within each round, median over the rounds (for req/s higher is better, for CPU lower). CPU: process CPU time (user+sys, all threads; for the curl CLI the shell loop and all its children) per request", RUNS, N, N_SLOW))
  m(string.format("- peak RSS: VmHWM (curl CLI: the largest process). RSS growth: one process makes %d runs of %d requests; VmRSS after a full GC, after run 2 vs after run %d (run 1 warms up allocator and caches)", MEM_RUNS, N, MEM_RUNS))
  m("- connections and handshakes: distinct nginx `$connection` serials seen for the longest single process of the client (the memory run for the libcurl clients), against the sequential requests it made; TLS: `$ssl_session_reused` `.` = full handshake, `r` = resumed")
  m("- Ir/req: client-side instructions per request from callgrind, start-up cancelled by difference; the figure to compare (the machine is shared and noisy)")
  m("- LuaSocket: `Connection: close`, so a connection (and over HTTPS a full handshake) per request; TCP_NODELAY set, because with the defaults a request over TLS often stalls ~40 ms on a delayed ACK here (LuaSocket writes request line, headers and body separately); `BENCH_LUASOCKET_NODELAY=0` measures the defaults")
  m("- C limit: `bench/limit.c`, the same request bytes as the module (nginx sees the same `$request_length`), everything constant set once before the loop; see docs/benchmarks.md")
  m()
  for _, l in ipairs(lines) do m(l) end
  m()
  m("¹ whole `curl` process per request (start-up included: that is what a shell script pays).")
  m()
  m("² the client's Ir/req with its own `curl_easy_perform` cost (inclusive, per request) replaced by the C limit's, over the C limit's. libcurl's cost per request moves by up to ±1% from run to run with timing (how often it polls before the answer is there); this column removes that, and keeps everything the binding does outside `curl_easy_perform`. Compare the two `curl_easy_perform` figures under Hot path to see whether the module makes libcurl itself work more.")
  m()
  m("## Targets")
  m()
  for _, l in ipairs(checks) do m(l) end
  m()
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
      "BENCH_PROTOS", "BENCH_README", "BENCH_LIMIT", "BENCH_LUA54_CPATH", "BENCH_LUAJIT_CPATH", "BENCH_ROOT",
      "BENCH_OPENRESTY", "BENCH_OPENRESTY_RUNS" }) do
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
    m("OpenResty: see bench/openresty (not yet measured) — thread pools 1/4/16 through ngx.run_worker_thread, and an unrelated location's latency while PIN requests are in flight vs. calling the module directly in a content handler.")
  end
  m()
  if #prof > 0 then
    m("## Hot path (callgrind)")
    m()
    m("Inclusive Ir per request (difference of the N1 and N2 runs), below the Lua entry point; `×k` = calls per request. Functions of smsend.so are expanded.")
    m()
    for _, l in ipairs(prof) do m(l) end
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
  m("Run from the repository root; `<BASE>` is `http://127.0.0.1:PORT/API/v1.0/REST/` or the `https://` one, `<CA>` the bench CA (`-` for HTTP).")
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
      -- the call trees stay in results.md; the summary line of each is kept
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
