-- hostile.lua — a scriptable hostile HTTP/1.1 gateway (plain or TLS) for the fault specs: it runs
-- as a child process on a free loopback port, records every connection and request, and misbehaves
-- on command (drops, resets, stops listening, malformed answers, a CONNECT proxy).
--
--   local hostile = require "spec.support.hostile"
--   local srv = hostile.start{ tls = true }          -- srv.base_url, srv.ca_file, srv.port
--   srv:set{ queue = { { action = "drop", unlisten = true } } }  -- how the next requests are met
--   ... srv:requests("2fa/request"), srv:count("conn"), srv:listen(), srv:reset() ...
--   srv:stop()
--
-- What a request meets (a "behaviour"): the first entry of `queue`, else `default`, else a normal
-- answer. Fields of a behaviour:
--   action     "answer" (default), "drop" (read the request, close without answering: FIN),
--              "reset" (read the request, abort the connection: RST), "tunnel" (CONNECT proxy to a
--              loopback target)
--   unlisten   stop listening (new connections are refused) before acting; srv:listen() undoes it
--   status, headers, body   the answer (defaults: 200 and what the gateway would say for the path;
--              headers is a list of "Name: value" lines)
--   echo       "short" / "page": the body quotes the request target and its decoded query values
--   broken     "big_header" (one 200 KB header line), "many_headers" (10 000 header lines),
--              "bad_chunked" (an invalid chunk size)
--   reset_after  seconds: after answering, wait that long, then reset the idle connection (RST)
-- Events (srv:events()): { type = "conn" | "request" | "closed" | "reset" | "unlisten" | "listen" |
-- "tunnel" | "tls_failed", conn = n, ... }; a request has method, target, path (relative to
-- /API/v1.0/REST/), headers (lower-case names), header_names (every header line's lower-case name,
-- in the order sent, repeats kept), body.
--
-- The server process exits when the spec process that started it is gone, and after 10 minutes.

local BASE_PATH = "/API/v1.0/REST/"

-- ===================================================================================== server ==

local function serve(cfg_file)
  local socket = require "socket"
  local cjson = require "cjson"
  local f = assert(io.open(cfg_file, "rb"))
  local cfg = cjson.decode(f:read("*a"))
  f:close()
  local ssl, ctx
  if cfg.tls then
    ssl = require "ssl"
    ctx = assert(ssl.newcontext{ mode = "server", protocol = "any", key = cfg.key, certificate = cfg.cert,
                                 options = { "all" } })
  end

  local events, next_conn = {}, 0
  local state = { default = nil, queue = {} }
  local running = true
  local started = socket.gettime()

  local function record(ev)
    ev.t = socket.gettime() - started
    events[#events + 1] = ev
  end

  -- scheduler: one coroutine per connection, parked on a socket until select says it is ready
  local waiting = { r = {}, w = {} }
  local sleepers = {}

  local function resume(co, ...)
    local ok, err = coroutine.resume(co, ...)
    if not ok then io.stderr:write("hostile: ", tostring(err), "\n") end
  end

  local function spawn(fn, ...)
    resume(coroutine.create(fn), ...)
  end

  local function wait(sock, dir)
    waiting[dir][sock] = coroutine.running()
    coroutine.yield()
  end

  local function nap(seconds)
    sleepers[#sleepers + 1] = { at = socket.gettime() + seconds, co = coroutine.running() }
    coroutine.yield()
  end

  local function forget(sock)
    waiting.r[sock] = nil
    waiting.w[sock] = nil
  end

  -- Buffered I/O on a non-blocking luasocket or luasec object.
  local function stream(sock)
    local s = { sock = sock, buf = "" }
    local function blocked(err)
      if err == "timeout" or err == "wantread" then wait(sock, "r") return true end
      if err == "wantwrite" then wait(sock, "w") return true end
      return false
    end
    function s.fill()
      while true do
        local data, err, partial = sock:receive(65536)
        local got = data or partial
        if got and got ~= "" then
          s.buf = s.buf .. got
          return true
        end
        if not blocked(err) then return nil, err end
      end
    end
    function s.line()
      while true do
        local at = s.buf:find("\r\n", 1, true)
        if at then
          local line = s.buf:sub(1, at - 1)
          s.buf = s.buf:sub(at + 2)
          return line
        end
        if #s.buf > 1024 * 1024 then return nil, "line too long" end
        local ok, err = s.fill()
        if not ok then return nil, err end
      end
    end
    function s.bytes(n)
      while #s.buf < n do
        local ok, err = s.fill()
        if not ok then return nil, err end
      end
      local out = s.buf:sub(1, n)
      s.buf = s.buf:sub(n + 1)
      return out
    end
    function s.send(data)
      local pos = 1
      while pos <= #data do
        local last, err, partial = sock:send(data, pos)
        last = last or partial
        if last and last >= pos then pos = last + 1 end
        if not (last and last == #data) then
          if not blocked(err) then return nil, err end
        end
      end
      return true
    end
    return s
  end

  local function read_request(s)
    local line, err = s.line()
    while line == "" do line, err = s.line() end -- stray CRLF between requests
    if not line then return nil, err end
    local method, target = line:match("^(%u+) (%S+) HTTP/1%.%d$")
    if not method then return nil, "bad request line" end
    local headers, names = {}, {}
    while true do
      local h
      h, err = s.line()
      if not h then return nil, err end
      if h == "" then break end
      local k, v = h:match("^([^:]+):%s*(.-)%s*$")
      if k then
        headers[k:lower()] = v
        names[#names + 1] = k:lower()
      end
    end
    local body = ""
    local len = tonumber(headers["content-length"] or "0")
    if len and len > 0 then
      body, err = s.bytes(len)
      if not body then return nil, err end
    end
    local path = target:match("^[^?]*")
    if path:sub(1, #BASE_PATH) == BASE_PATH then path = path:sub(#BASE_PATH + 1) end
    return { type = "request", method = method, target = target, path = path, headers = headers,
             header_names = names, body = body }
  end

  local REASONS = { [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
                    [404] = "Not Found", [429] = "Too Many Requests", [502] = "Bad Gateway",
                    [503] = "Service Unavailable" }

  local function unescape(s)
    s = s:gsub("%+", " ")
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end

  -- What the gateway would answer for a path (the sandbox's normal behaviour, much reduced).
  local function normal_answer(req)
    local p = req.path
    if p == "checksession" then return 200, "true", "text/plain" end
    if p == "login" or p == "token" then return 200, cfg.login_answer or "HOSTILE-UK;HOSTILE-SK", "text/plain" end
    if p == "2fa/request" or p == "2fa/verify" then return 200, '{"status":"OK"}', "application/json" end
    return 404, '{"error":"not found"}', "application/json"
  end

  local function echo_body(req, kind)
    local values = {}
    for k, v in (req.target:match("%?(.*)$") or ""):gmatch("([^&=]+)=([^&]*)") do
      values[#values + 1] = unescape(k) .. "=" .. unescape(v)
    end
    local quoted = req.target .. " " .. table.concat(values, " ")
    if kind == "short" then return quoted end
    return "<html><head><title>Error</title></head><body><h1>Request refused</h1><p>The request <code>GET "
      .. quoted .. "</code> could not be served.</p><p>" .. ("Please contact support. "):rep(20)
      .. "</p></body></html>"
  end

  local function head(status, lines)
    return ("HTTP/1.1 %d %s\r\n"):format(status, REASONS[status] or "Status") .. table.concat(lines, "\r\n")
      .. "\r\n\r\n"
  end

  local function broken_answer(kind)
    local body = '{"status":"OK"}'
    if kind == "big_header" then
      return head(200, { "Content-Type: application/json", "X-Big: " .. ("b"):rep(200 * 1024),
                         "Content-Length: " .. #body }) .. body
    elseif kind == "many_headers" then
      local lines = { "Content-Type: application/json" }
      for i = 1, 10000 do lines[#lines + 1] = ("X-Flood-%05d: %s"):format(i, ("f"):rep(24)) end
      lines[#lines + 1] = "Content-Length: " .. #body
      return head(200, lines) .. body
    elseif kind == "bad_chunked" then
      return head(200, { "Content-Type: application/json", "Transfer-Encoding: chunked" })
        .. "zz\r\n" .. body .. "\r\n0\r\n\r\n"
    end
    error("unknown broken answer " .. tostring(kind))
  end

  local function answer(req, b)
    if b.broken then return broken_answer(b.broken) end
    local status, body, ctype = normal_answer(req)
    if b.status then status = b.status end
    if b.body then body = b.body end
    if b.echo then body, ctype = echo_body(req, b.echo), "text/html" end
    local lines = { "Content-Type: " .. (ctype or "text/plain"), "Content-Length: " .. #body }
    for _, h in ipairs(b.headers or {}) do lines[#lines + 1] = h end
    return head(status, lines) .. body
  end

  -- listening ---------------------------------------------------------------------------------
  local listener, accept_loop
  local handle_conn

  local function listen(port)
    local l = assert(socket.bind("127.0.0.1", port or 0, 64))
    l:settimeout(0)
    listener = l
    spawn(accept_loop, l)
    local _, p = l:getsockname()
    return tonumber(p)
  end

  local function unlisten()
    if listener then
      forget(listener)
      listener:close()
      listener = nil
    end
  end

  function accept_loop(l)
    while listener == l do
      wait(l, "r")
      if listener ~= l then return end
      local c = l:accept()
      if c then spawn(handle_conn, c) end
    end
  end

  -- An abortive close: SO_LINGER 0, so close() sends RST. With TLS the fd is closed behind luasec's
  -- back (so no close_notify goes out first); luasec's own close right after then only meets a closed
  -- fd number (nothing can have reused it in between: one thread, no call in between).
  local open_conns = {} -- connections not closed yet: a spec's reset closes them all

  local function reset(conn)
    if conn.dead then return end
    conn.dead = true
    open_conns[conn] = nil
    forget(conn.sock)
    if conn.tls then
      local helper = socket.tcp()
      helper:close()
      helper:setfd(conn.fd)
      helper:setoption("linger", { on = true, timeout = 0 })
      helper:close()
      conn.sock:close()
    else
      conn.sock:setoption("linger", { on = true, timeout = 0 })
      conn.sock:close()
    end
    record{ type = "reset", conn = conn.id }
  end

  local function close(conn, why)
    if conn.dead then return end
    conn.dead = true
    open_conns[conn] = nil
    forget(conn.sock)
    conn.sock:close()
    record{ type = "closed", conn = conn.id, why = why }
  end

  -- CONNECT host:port → a byte pump both ways (loopback targets only).
  local function tunnel(conn, s, req)
    local host, port = req.target:match("^(.*):(%d+)$")
    host = host and host:gsub("^%[(.*)%]$", "%1")
    if host ~= "127.0.0.1" and host ~= "localhost" and host ~= "::1" then
      s.send(head(403, { "Content-Length: 0" }))
      return close(conn, "tunnel refused")
    end
    local up = (host == "::1" and socket.tcp6 or socket.tcp)()
    up:settimeout(2)
    if not up:connect(host == "localhost" and "127.0.0.1" or host, tonumber(port)) then
      s.send(head(502, { "Content-Length: 0" }))
      return close(conn, "tunnel connect failed")
    end
    up:settimeout(0)
    record{ type = "tunnel", conn = conn.id, target = req.target }
    s.send("HTTP/1.1 200 Connection established\r\n\r\n")
    local u = stream(up)
    local done = false
    local function pump(from, to)
      if from.buf ~= "" then
        local pending = from.buf
        from.buf = ""
        if not to.send(pending) then done = true end
      end
      while not done do
        local ok = from.fill()
        if not ok or done then break end
        local data = from.buf
        from.buf = ""
        if not to.send(data) then break end
      end
      if not done then
        done = true
        conn.dead = true
        open_conns[conn] = nil
        forget(up)
        forget(conn.sock)
        up:close()
        conn.sock:close()
        record{ type = "closed", conn = conn.id, why = "tunnel end" }
      end
    end
    spawn(pump, u, s)
    pump(s, u)
  end

  function handle_conn(raw)
    next_conn = next_conn + 1
    local conn = { id = next_conn, fd = raw:getfd(), tls = ctx ~= nil }
    raw:settimeout(0)
    raw:setoption("tcp-nodelay", true)
    record{ type = "conn", conn = conn.id }
    conn.sock = raw
    open_conns[conn] = true
    if ctx then
      conn.sock = assert(ssl.wrap(raw, ctx))
      conn.sock:settimeout(0)
      while true do
        local ok, err = conn.sock:dohandshake()
        if ok then break end
        if err == "wantread" then wait(conn.sock, "r")
        elseif err == "wantwrite" then wait(conn.sock, "w")
        else
          record{ type = "tls_failed", conn = conn.id, why = tostring(err) }
          forget(conn.sock)
          conn.sock:close()
          return
        end
      end
    end
    local s = stream(conn.sock)
    while true do
      local req, err = read_request(s)
      if not req then return close(conn, err) end
      req.conn = conn.id
      record(req)
      local b = table.remove(state.queue, 1) or state.default or {}
      if b.unlisten then
        unlisten()
        record{ type = "unlisten" }
      end
      local action = b.action or (req.method == "CONNECT" and "tunnel" or "answer")
      if action == "drop" then return close(conn, "dropped") end
      if action == "reset" then return reset(conn) end
      if action == "tunnel" then return tunnel(conn, s, req) end
      if not s.send(answer(req, b)) then return close(conn, "send failed") end
      if b.broken then return close(conn, "broken answer sent") end
      if b.reset_after then
        nap(b.reset_after)
        return reset(conn)
      end
    end
  end

  -- control channel: one JSON command per line, one JSON answer per line -----------------------
  local commands = {}
  function commands.set(c)
    state.default = c.default
    state.queue = c.queue or {}
    return { ok = true }
  end
  function commands.events() return { ok = true, events = events } end
  function commands.reset()
    -- Connections kept alive from an earlier test are closed (FIN), so a client sees them stale
    -- before it writes: every test starts with no connection and no pending reset_after.
    for conn in pairs(open_conns) do close(conn, "spec reset") end
    events = {}
    state.default, state.queue = nil, {}
    if not listener then listen(cfg.port) end
    return { ok = true }
  end
  function commands.listen()
    if not listener then
      listen(cfg.port)
      record{ type = "listen" }
    end
    return { ok = true }
  end
  function commands.stop()
    running = false
    return { ok = true }
  end

  local function control_conn(c)
    c:settimeout(0)
    local s = stream(c)
    while true do
      local line = s.line()
      if not line then break end
      local ok, cmd = pcall(cjson.decode, line)
      local reply
      -- connections the kernel has already established are counted before any answer, so that a
      -- spec asking right after a call sees every connection that call made
      while listener do
        local pending = listener:accept()
        if not pending then break end
        spawn(handle_conn, pending)
      end
      if ok and type(cmd) == "table" and commands[cmd.cmd] then
        reply = commands[cmd.cmd](cmd)
      else
        reply = { ok = false, error = "bad command" }
      end
      if not s.send(cjson.encode(reply) .. "\r\n") then break end
    end
    forget(c)
    c:close()
  end

  local control = assert(socket.bind("127.0.0.1", 0, 16))
  control:settimeout(0)
  spawn(function()
    while true do
      wait(control, "r")
      local c = control:accept()
      if c then spawn(control_conn, c) end
    end
  end)
  cfg.port = listen(0)
  local _, control_port = control:getsockname()

  local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
  local ready = assert(io.open(cfg.ready .. ".tmp", "wb"))
  ready:write(cjson.encode{ pid = tonumber(pid), port = cfg.port, control = tonumber(control_port) })
  ready:close()
  os.rename(cfg.ready .. ".tmp", cfg.ready)

  local function alive(p)
    local st = io.open(("/proc/%d/stat"):format(p))
    if not st then return false end
    local line = st:read("*l") or ""
    st:close()
    return line:match("^%d+ %b() (%a)") ~= "Z"
  end

  local last_check = 0
  while running do
    local now = socket.gettime()
    if now - last_check > 0.5 then
      last_check = now
      if (cfg.owner and not alive(cfg.owner)) or now - started > (cfg.max_life or 600) then break end
    end
    local rl, wl = {}, {}
    for sock in pairs(waiting.r) do rl[#rl + 1] = sock end
    for sock in pairs(waiting.w) do wl[#wl + 1] = sock end
    local timeout = 0.25
    for _, sl in ipairs(sleepers) do timeout = math.max(0, math.min(timeout, sl.at - now)) end
    local r, w = socket.select(rl, wl, timeout)
    for _, sock in ipairs(r or {}) do
      local co = waiting.r[sock]
      waiting.r[sock] = nil
      if co then resume(co) end
    end
    for _, sock in ipairs(w or {}) do
      local co = waiting.w[sock]
      waiting.w[sock] = nil
      if co then resume(co) end
    end
    now = socket.gettime()
    local due = {}
    for i = #sleepers, 1, -1 do
      if sleepers[i].at <= now then
        due[#due + 1] = sleepers[i].co
        table.remove(sleepers, i)
      end
    end
    for i = #due, 1, -1 do resume(due[i]) end
  end
  os.exit(0)
end

if select(1, ...) == "--serve" then
  serve(select(2, ...))
  return
end

-- =================================================================================== spec side ==

local socket = require "socket"
local cjson = require "cjson"

local function script_path()
  local src = debug.getinfo(1, "S").source
  return src:sub(1, 1) == "@" and src:sub(2) or "spec/support/hostile.lua"
end
local SCRIPT = script_path()
local support_dir = SCRIPT:match("^(.*)/[^/]*$") or "."
local sandbox = dofile(support_dir .. "/../../sandbox/launch.lua")
local util = dofile(support_dir .. "/util.lua")
local shq = sandbox.shell_quote

local M = {}

local Server = {}
Server.__index = Server

-- One command over the control channel → the decoded answer.
function Server:command(cmd)
  local c = assert(socket.tcp())
  c:settimeout(5)
  assert(c:connect("127.0.0.1", self.control), "hostile server control channel is gone")
  assert(c:send(cjson.encode(cmd) .. "\r\n"))
  local line, err = c:receive("*l")
  c:close()
  assert(line, "hostile server did not answer: " .. tostring(err))
  local reply = cjson.decode(line)
  assert(reply.ok, "hostile server refused " .. tostring(cmd.cmd))
  return reply
end

-- srv:set{ default = behaviour, queue = { behaviour, ... } }: replaces both
function Server:set(t)
  t = t or {}
  local queue = t.queue or {}
  self:command{ cmd = "set", default = t.default, queue = #queue > 0 and queue or nil }
end

-- Forgets the events, goes back to normal answers and listens again.
function Server:reset() self:command{ cmd = "reset" } end
function Server:listen() self:command{ cmd = "listen" } end

function Server:events()
  local evs = self:command{ cmd = "events" }.events
  if evs == cjson.empty_array or type(evs) ~= "table" then return {} end
  return evs
end

-- Recorded requests, all or those to one path (relative to /API/v1.0/REST/).
function Server:requests(path)
  local out = {}
  for _, e in ipairs(self:events()) do
    if e.type == "request" and (not path or e.path == path) then out[#out + 1] = e end
  end
  return out
end

-- How many events of a type (e.g. "conn", "reset"), of any connection or of connection conn.
function Server:count(kind, conn)
  local n = 0
  for _, e in ipairs(self:events()) do
    if e.type == kind and (not conn or e.conn == conn) then n = n + 1 end
  end
  return n
end

-- Waits until an event of that type (of connection conn, if given) has been recorded (true), or
-- timeout seconds pass (false). Give conn where a connection of an earlier test could still send
-- that event late (a reset_after of the previous test).
function Server:wait_for(kind, timeout, conn)
  local deadline = socket.gettime() + (timeout or 2)
  repeat
    if self:count(kind, conn) > 0 then return true end
    socket.sleep(0.005)
  until socket.gettime() > deadline
  return false
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  pcall(self.command, self, { cmd = "stop" })
  local deadline = socket.gettime() + 3
  while sandbox.pid_alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
  if sandbox.pid_alive(self.pid) then sandbox.run("kill -KILL " .. self.pid .. " 2>/dev/null") end
  sandbox.run("rm -rf " .. shq(self.dir))
end

-- The test CA and the localhost certificate of the sandbox (cached per user like the sandbox's).
local function certificates()
  local uid = sandbox.capture("id -u"):gsub("%s+$", "")
  local dir = os.getenv("SMSEND_SANDBOX_CERT_CACHE")
  if not dir or dir == "" then
    dir = "/tmp/smsend-sandbox-certs-" .. uid
    local q = shq(dir)
    if not sandbox.run("test ! -e " .. q .. " || { test -O " .. q .. " && test ! -L " .. q .. "; }") then
      dir = assert(sandbox.tmpdir("smsend-hostile-certs"))
    end
  end
  return sandbox.ensure_certs(dir)
end

-- hostile.start{ tls = false, default = behaviour, login_answer = "UK;SK" } → a running server.
function M.start(opts)
  opts = opts or {}
  local dir = assert(sandbox.tmpdir("smsend-hostile"))
  local cfg = { owner = sandbox.my_pid(), ready = dir .. "/ready.json", tls = opts.tls and true or false,
                login_answer = opts.login_answer }
  local srv = setmetatable({ dir = dir, tls = cfg.tls }, Server)
  if cfg.tls then
    local certs = certificates()
    cfg.cert, cfg.key = certs .. "/tls.crt", certs .. "/tls.key"
    srv.ca_file = certs .. "/ca.crt"
  end
  sandbox.write_file(dir .. "/config.json", cjson.encode(cfg))
  local log = dir .. "/server.log"
  assert(sandbox.run(util.interpreter() .. " " .. shq(SCRIPT) .. " --serve " .. shq(dir .. "/config.json")
    .. " >" .. shq(log) .. " 2>&1 </dev/null &"))
  local deadline = socket.gettime() + 10
  local info
  while socket.gettime() < deadline do
    local text = sandbox.read_file(cfg.ready)
    if text then info = cjson.decode(text) break end
    socket.sleep(0.01)
  end
  if not info then
    local why = sandbox.read_file(log) or ""
    sandbox.run("rm -rf " .. shq(dir))
    error("hostile server did not start: " .. why, 2)
  end
  -- (cjson gives floats on Lua 5.4: the pid goes into a shell command)
  srv.pid, srv.port, srv.control = ("%d"):format(info.pid), math.floor(info.port), math.floor(info.control)
  srv.base_url = ("%s://127.0.0.1:%d%s"):format(cfg.tls and "https" or "http", srv.port, BASE_PATH)
  if opts.default then srv:set{ default = opts.default } end
  return srv
end

-- Inside a describe block: a server started in setup() and stopped in teardown(), reset before each
-- test. Returns a handle forwarding to it.
function M.fixture(opts)
  local current
  local handle = setmetatable({}, {
    __index = function(_, k)
      assert(current, "hostile server not started (use the handle inside it/before_each)")
      local v = current[k]
      if type(v) == "function" then return function(_, ...) return v(current, ...) end end
      return v
    end,
  })
  local busted = require "busted"
  busted.setup(function() current = M.start(opts) end)
  busted.teardown(function()
    if current then current:stop() end
    current = nil
  end)
  busted.before_each(function() current:reset() end)
  return handle
end

return M
