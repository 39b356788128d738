-- Spec support: starts and stops a Debian nginx + libnginx-mod-http-lua (master and workers,
-- daemonized) on a free loopback port in a temp prefix, with the LuaJIT build of smsend on its
-- lua_package_cpath. Plain Lua (5.1/LuaJIT .. 5.4) with luasocket.
--
--   local openresty = require "spec.support.openresty"
--   local ng = openresty.start{ workers = 2, thread_pools = { smsend = 4 }, server = "location ..." }
--   ng:get("/ping") → status, body;  ng:reload();  ng:worker_pids();  ng:stop()

local socket = require "socket"
local helpers = require "spec.support.helpers"

local M = {}

local sandbox = helpers.sandbox
local shq = helpers.shell_quote
local run = sandbox.run

M.repo_root = helpers.repo_root
-- The LuaJIT build nginx loads; SMSEND_OPENRESTY_SO_DIR points elsewhere (e.g. a patched build).
M.so_dir = os.getenv("SMSEND_OPENRESTY_SO_DIR")
if not M.so_dir or M.so_dir == "" then M.so_dir = M.repo_root .. "/build/luajit" end
M.luajit_so = M.so_dir .. "/smsend.so"

local read_file = sandbox.read_file
local write_file = sandbox.write_file
local capture = sandbox.capture

local function tail(s, n)
  local lines = {}
  for line in (s or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.concat(lines, "\n", math.max(1, #lines - (n or 20) + 1))
end

-- A module every started nginx has on its lua_package_path as "spec_nginx": what test handlers
-- need to talk JSON with the spec (Content-Length bodies, for the spec's keep-alive clients).
M.NGINX_HELPERS = [==[
local cjson = require "cjson"
local M = {}

-- Answers with t as JSON (or with t itself when it is a string already).
function M.reply(t)
  local s = type(t) == "string" and t or cjson.encode(t)
  ngx.header.content_type = "application/json"
  ngx.header.content_length = #s
  ngx.print(s)
end

-- The request body decoded from JSON ({} when there is none).
function M.body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  return data and cjson.decode(data) or {}
end

return M
]==]

local function free_port()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local port_open = sandbox.port_open

M.is_root = capture("id -u"):match("^0%s*$") ~= nil

-- Raw HTTP/1.1 exchange on a new connection ("Connection: close", so the body ends at EOF).
-- → status, body, headers (lower-case names), seconds taken; or nil, error.
function M.http(port, method, path, body, timeout)
  local t0 = socket.gettime()
  local c = socket.tcp()
  c:settimeout(timeout or 10)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then return nil, err end
  local req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"):format(method, path)
  if body then
    req = req .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  else
    req = req .. "\r\n"
  end
  ok, err = c:send(req)
  if not ok then c:close() return nil, err end
  local data, rerr, partial = c:receive("*a")
  c:close()
  data = data or partial
  if not data or data == "" then return nil, rerr or "empty answer" end
  local head, rest = data:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, "malformed answer: " .. data:sub(1, 200) end
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
  return status, rest, headers, socket.gettime() - t0
end

-- Sends a request and returns the socket without reading: collect it later with M.collect.
function M.fire(port, method, path, body)
  local c = assert(socket.tcp())
  c:settimeout(10)
  assert(c:connect("127.0.0.1", port))
  local req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"):format(method, path)
  if body then
    req = req .. "Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  else
    req = req .. "\r\n"
  end
  assert(c:send(req))
  return c
end

function M.collect(c, timeout)
  c:settimeout(timeout or 15)
  local data, err, partial = c:receive("*a")
  c:close()
  data = data or partial
  if not data or data == "" then return nil, err or "empty answer" end
  local head, rest = data:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, "malformed answer" end
  return tonumber(head:match("^HTTP/1%.%d (%d%d%d)")), rest
end

-- Nginx object -----------------------------------------------------------------------------

local Nginx = {}
Nginx.__index = Nginx

function Nginx:url(path) return ("http://127.0.0.1:%d%s"):format(self.port, path) end
function Nginx:get(path, timeout) return M.http(self.port, "GET", path, nil, timeout) end
function Nginx:post(path, body, timeout) return M.http(self.port, "POST", path, body, timeout) end
function Nginx:read_error_log() return read_file(self.error_log) or "" end
function Nginx:alive() return sandbox.pid_alive(self.pid) end

-- PIDs of the worker processes of the master (sorted).
function Nginx:worker_pids()
  local out = {}
  for pid in capture("ps -o pid= --ppid " .. tonumber(self.pid) .. " 2>/dev/null"):gmatch("%d+") do
    out[#out + 1] = tonumber(pid)
  end
  table.sort(out)
  return out
end

local function wait_until(what, deadline, fn, self)
  while true do
    if fn() then return end
    if socket.gettime() > deadline then
      error(("openresty: %s\n--- error log ---\n%s"):format(what, tail(self:read_error_log(), 20)), 3)
    end
    socket.sleep(0.02)
  end
end

-- Waits for `workers` worker processes none of which is in `old`, and for /ping to answer.
function Nginx:wait_ready(old, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  local stale = {}
  for _, p in ipairs(old or {}) do stale[p] = true end
  wait_until("workers did not come up", deadline, function()
    if not self:alive() then
      error("openresty: nginx master died\n--- error log ---\n" .. tail(self:read_error_log(), 20), 0)
    end
    local pids = self:worker_pids()
    if #pids ~= self.workers then return false end
    for _, p in ipairs(pids) do if stale[p] then return false end end
    return true
  end, self)
  wait_until("port not open", deadline, function() return port_open(self.port) end, self)
  wait_until("/ping did not answer", deadline, function()
    local status = self:get("/ping", 2)
    return status == 200
  end, self)
end

-- nginx -s reload (SIGHUP to the master); returns once a new set of workers answers.
function Nginx:reload(timeout)
  local old = self:worker_pids()
  assert(run("kill -HUP " .. tonumber(self.pid)))
  self:wait_ready(old, timeout)
  -- the old workers finish their requests, then exit
  local deadline = socket.gettime() + (timeout or 10)
  wait_until("old workers did not exit", deadline, function()
    for _, p in ipairs(old) do if sandbox.pid_alive(p) then return false end end
    return true
  end, self)
end

function Nginx:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = self.pid
  local workers = pid and self:worker_pids() or {}
  if pid and sandbox.pid_alive(pid) then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    -- workers wait for their busy threads to finish the call in hand before they exit
    local deadline = socket.gettime() + 15
    while sandbox.pid_alive(pid) and socket.gettime() < deadline do socket.sleep(0.02) end
    if sandbox.pid_alive(pid) then run("kill -KILL " .. pid .. " 2>/dev/null") end
  end
  for _, w in ipairs(workers) do
    if sandbox.pid_alive(w) then run("kill -KILL " .. w .. " 2>/dev/null") end
  end
  if self.remove_dir and os.getenv("SMSEND_SANDBOX_KEEP") ~= "1" then
    run("rm -rf " .. shq(self.dir))
  end
end

-- Configuration --------------------------------------------------------------------------------

-- Stops the master when the process that started it (busted) is gone, and then removes the
-- prefix dir, so an interrupted run leaves neither nginx nor files behind.
local function watchdog(owner, pidfile, dir)
  return ([[
    do
      local owner, pidfile, dir = %d, %q, %q
      local function alive(pid)
        local f = io.open("/proc/" .. pid .. "/stat")
        if not f then return false end
        local s = f:read("*l") or ""
        f:close()
        return not s:match("^%%d+ %%b() Z")
      end
      ngx.timer.every(0.5, function(premature)
        if premature or alive(owner) then return end
        local f = io.open(pidfile)
        local master = f and f:read("*n")
        if f then f:close() end
        if not master then return end
        local function q(x) return "'" .. x:gsub("'", "'\\''") .. "'" end
        os.execute(("kill -TERM %%d; (while kill -0 %%d 2>/dev/null; do sleep 0.1; done; rm -rf %%s)"
          .. " >/dev/null 2>&1 </dev/null &"):format(master, master, q(dir)))
      end)
    end
]]):format(owner, pidfile, dir)
end

local function module_lines(nginx)
  return sandbox.module_directives(nginx)
end

-- The generated configuration. opts: workers, thread_pools = { name = threads, ... }, main, http,
-- server (raw lines for those contexts), init (Lua for init_by_lua, after requiring smsend and
-- smsend.resty), init_worker (Lua), env (its names are passed on to the workers),
-- lua_files = { ["name.lua"] = text } (written to <dir>/lua, which is on lua_package_path, beside
-- spec_nginx.lua: M.NGINX_HELPERS),
-- access_log = false.
local function generated_conf(o, ng, nginx)
  local d = ng.dir
  local out = {
    "# generated by spec/support/openresty.lua",
    module_lines(nginx),
    M.is_root and "user root;" or "",
    "daemon on;",
    "master_process on;",
    ("worker_processes %d;"):format(ng.workers),
    ('pid "%s";'):format(ng.pid_file),
    ('error_log "%s" notice;'):format(ng.error_log),
  }
  local names = {}
  for name in pairs(o.thread_pools or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    out[#out + 1] = ("thread_pool %s threads=%d;"):format(name, o.thread_pools[name])
  end
  for name in pairs(o.env or {}) do out[#out + 1] = ("env %s;"):format(name) end
  out[#out + 1] = o.main or ""
  out[#out + 1] = "events { worker_connections 4096; }"
  out[#out + 1] = "http {"
  out[#out + 1] = o.access_log == false and "  access_log off;"
    or ('  access_log "%s/logs/access.log";'):format(d)
  for _, t in ipairs({ "client_body", "proxy", "fastcgi", "uwsgi", "scgi" }) do
    out[#out + 1] = ('  %s_temp_path "%s/tmp_%s";'):format(t, d, t)
  end
  out[#out + 1] = "  keepalive_requests 100000;"
  out[#out + 1] = ('  lua_package_path "%s/lua/?.lua;%s/lua/?.lua;;";'):format(d, M.repo_root)
  out[#out + 1] = ('  lua_package_cpath "%s/?.so;;";'):format(M.so_dir)
  out[#out + 1] = o.http or ""
  out[#out + 1] = "  init_by_lua_block {"
  out[#out + 1] = '    require "smsend"'
  out[#out + 1] = '    require "smsend.resty"'
  out[#out + 1] = o.init or ""
  out[#out + 1] = "  }"
  out[#out + 1] = "  init_worker_by_lua_block {"
  out[#out + 1] = watchdog(ng.owner, ng.pid_file, ng.dir)
  out[#out + 1] = o.init_worker or ""
  out[#out + 1] = "  }"
  out[#out + 1] = "  server {"
  out[#out + 1] = ("    listen 127.0.0.1:%d;"):format(ng.port)
  out[#out + 1] = '    location = /ping { default_type text/plain; return 200 "pong\\n"; }'
  out[#out + 1] = o.server or ""
  out[#out + 1] = "  }"
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

-- A given configuration text (opts.conf(port, dir) → text): `user root;` when running as root
-- (unless it has a user line) and the owner watchdog are added (at the top of the conf's own
-- init_worker_by_lua_block when it has one); pid and logs are its own business
-- but must lie in `dir` (paths relative to the prefix do).
local function given_conf(o, ng)
  local text = o.conf(ng.port, ng.dir)
  if M.is_root and not text:find("\nuser%s") then text = "user root;\n" .. text end
  local n
  if text:find("init_worker_by_lua_block {\n", 1, true) then -- the watchdog goes first in the conf's own
    assert(not text:find("init_worker_by_lua_file"), "openresty: the given conf has init_worker_by_lua_file")
    return (text:gsub("init_worker_by_lua_block {\n", function(m)
      return m .. watchdog(ng.owner, ng.pid_file, ng.dir)
    end, 1))
  end
  assert(not text:find("init_worker_by_lua"), "openresty: the given conf has its own init_worker_by_lua")
  text, n = text:gsub("\nhttp%s*{\n", function(m)
    return m .. "  init_worker_by_lua_block {\n" .. watchdog(ng.owner, ng.pid_file, ng.dir) .. "  }\n"
  end, 1)
  assert(n == 1, "openresty: no 'http {' line in the given conf")
  return text
end

-- examples/openresty/nginx.conf as a given conf for port: its listen line on that port (with
-- `listen_extra`, e.g. " reuseport"), and its paths out of the prefix made absolute.
function M.example_conf(port, listen_extra)
  local dir = M.repo_root .. "/examples/openresty"
  local text = assert(read_file(dir .. "/nginx.conf"))
  local t, n = text:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. (listen_extra or "") .. ";")
  assert(n == 1, "openresty: the example's listen line moved")
  t = t:gsub("%$prefix/%.%./%.%./", (M.repo_root:gsub("%%", "%%%%")) .. "/")
  return (t:gsub("%$prefix/", (dir:gsub("%%", "%%%%")) .. "/"))
end

-- openresty.start(opts) → started nginx. opts: as generated_conf, or conf = function(port, dir);
-- env = { NAME = value } (nginx's environment; the generated conf also passes them to workers),
-- workers (default 2), pid_file (with conf: where the conf puts it, relative to dir), timeout.
local built = false

-- The default build is made (or brought up to date) first: `make spec-lua54` builds only the
-- Lua 5.4 module, and nginx must not load a stale LuaJIT one.
local function ensure_build()
  if built or os.getenv("SMSEND_OPENRESTY_SO_DIR") then return end
  built = true
  run("make -C " .. shq(M.repo_root) .. " --no-print-directory -s build/luajit/smsend.so >/dev/null 2>&1")
end

function M.start(opts)
  local o = opts or {}
  ensure_build()
  assert(read_file(M.luajit_so), "openresty: " .. M.luajit_so .. " is missing (run make)")
  local nginx = sandbox.find_nginx()
  local dir = helpers.tmpdir("smsend-openresty")
  assert(run("mkdir -p " .. shq(dir .. "/logs") .. " " .. shq(dir .. "/lua")))
  write_file(dir .. "/lua/spec_nginx.lua", M.NGINX_HELPERS)
  for name, text in pairs(o.lua_files or {}) do write_file(dir .. "/lua/" .. name, text) end
  local ng = setmetatable({
    dir = dir,
    remove_dir = true,
    workers = o.workers or 2,
    owner = sandbox.my_pid(),
    error_log = dir .. "/logs/error.log",
    pid_file = dir .. "/" .. (o.pid_file or "logs/nginx.pid"),
  }, Nginx)
  local env = {}
  for k, v in pairs(o.env or {}) do env[#env + 1] = k .. "=" .. shq(v) end
  local last_err
  for _ = 1, 3 do
    ng.port = free_port()
    write_file(dir .. "/nginx.conf", o.conf and given_conf(o, ng) or generated_conf(o, ng, nginx))
    os.remove(ng.pid_file)
    local out = dir .. "/logs/nginx.out"
    local cmd = ("%s %s -p %s -c %s -e %s >%s 2>&1 </dev/null"):format(
      #env > 0 and ("env " .. table.concat(env, " ")) or "", shq(nginx), shq(dir .. "/"),
      shq(dir .. "/nginx.conf"), shq(ng.error_log), shq(out))
    if run(cmd) then
      local deadline = socket.gettime() + (o.timeout or 10)
      while socket.gettime() < deadline do
        ng.pid = tonumber((read_file(ng.pid_file) or ""):match("%d+"))
        if ng.pid then break end
        socket.sleep(0.01)
      end
      if ng.pid then
        local ok, err = pcall(ng.wait_ready, ng, nil, o.timeout)
        if ok then return ng end
        last_err = err
        ng.remove_dir = false
        ng:stop()
        ng.stopped, ng.remove_dir = false, true
      else
        last_err = "nginx wrote no pid file"
      end
    else
      last_err = "nginx failed to start:\n" .. tail(read_file(out), 10)
    end
    last_err = last_err .. "\n--- error log ---\n" .. tail(ng:read_error_log(), 20)
    if not last_err:find("Address already in use", 1, true) then break end
  end
  ng.remove_dir = false
  error("openresty: " .. tostring(last_err) .. "\n(kept " .. dir .. ")", 2)
end

return M
