-- client.lua — one Lua client of `make bench`, run under lua5.4 or luajit.
--
--   <lua> bench/client.lua MODE[:K] BASE_URL CAINFO|- N RUNS
--
-- MODE:
--   object[:B]  local client = smsend.new{...}; client:request_pin{recipient=..., ...} per request;
--               B = bytes of messageBody (default 20)
--   module[:M]  smsend.request_pin{user_key=..., access_token=..., base_url=..., cainfo=..., recipient=..., ...}
--               per request, a new table each time, cycling over M configurations (default 1) that
--               differ in access_token: the module-level cache holds M clients
--   poll[:K]    one client, K ops in flight (default 1). K = 1: client:request_pin_async, then
--               op:poll() until it answers, waiting in between until op:pollfd() is readable, for
--               at most op:timeout(): poll(2) through bench/pollwait.c (found through
--               BENCH_WAIT_CPATH, a package.cpath entry). K > 1: a window of K ops, each finished
--               one replaced by a new one; op:poll() on the oldest op (which drives the client's
--               transport, and so every op), op:done() on the others, and the same wait when a
--               pass finished none
--   pollselect[:K]  the same, waiting with LuaSocket's socket.select instead
--   luasocket   socket.http POST (LuaSec for https://) with the same headers and body, the answer
--               collected with ltn12.sink.table and decoded with lua-cjson; a connection per request
--               (socket.http sends "Connection: close"), TCP_NODELAY set (see below)
--   loop        no I/O at all: builds the same request table and gets a small result table back
--               from a Lua function (the floor any Lua binding pays; used for scale only)
-- What is sent comes from bench/payload.lua. The smsend module is found through SMSEND_CPATH (a
-- package.cpath entry).
-- RUNS > 0: one warm-up request, then RUNS timed runs of N requests; prints
--   "run <i> wall=<s> cpu=<s> rss_kb=<VmRSS after a full GC> lua_kb=<Lua heap>" per run and
--   "hwm_kb=<VmHWM>".
-- RUNS = 0: N untimed requests (for callgrind); prints "done <N>".
-- Any failed request: message on stderr, exit status 1.

local mode, base, cainfo, n, runs = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])
assert(mode and base and cainfo and n and runs, "usage: client.lua MODE[:K] BASE_URL CAINFO|- N RUNS")
if cainfo == "-" then cainfo = nil end
local kind, param = mode:match("^(%a+):?(%d*)$")
param = tonumber(param)

for _, name in ipairs({ "BENCH_WAIT_CPATH", "SMSEND_CPATH" }) do
  local cpath = os.getenv(name)
  if cpath and cpath ~= "" then package.cpath = cpath .. ";" .. package.cpath end
end

local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "bench"
local P = dofile(here .. "/payload.lua")
local RECIPIENT, SENDER, EXPIRY = P.RECIPIENT, P.SENDER, P.EXPIRY
local MESSAGE = P.message(kind == "object" and param or nil)

local function fail(msg)
  io.stderr:write("client.lua (", mode, "): ", tostring(msg), "\n")
  os.exit(1)
end

-- many(k) makes k requests: true, or nil and a message
local many
-- for the modes that make one request at a time
local function each(one)
  return function(k)
    for _ = 1, k do
      local ok, err = one()
      if not ok then return nil, err end
    end
    return true
  end
end

if kind == "object" then
  local smsend = require "smsend"
  local client = assert(smsend.new{ user_key = P.USER_KEY, access_token = P.TOKEN, base_url = base, cainfo = cainfo })
  many = each(function()
    local st = client:request_pin{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, st.message end
    return true
  end)
elseif kind == "module" then
  local smsend = require "smsend"
  local request_pin = smsend.request_pin
  local tokens, m, k = {}, param or 1, 0
  for i = 1, m do tokens[i] = P.token(i) end
  local user_key = P.USER_KEY
  many = each(function()
    k = k % m + 1
    local st = request_pin{ user_key = user_key, access_token = tokens[k], base_url = base, cainfo = cainfo,
                            recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, st.message end
    return true
  end)
elseif kind == "poll" or kind == "pollselect" then
  local smsend = require "smsend"
  local client = assert(smsend.new{ user_key = P.USER_KEY, access_token = P.TOKEN, base_url = base, cainfo = cainfo })
  local fields = { recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
  local inflight = param or 1
  local fd -- every op of a client has the client's descriptor
  local wait
  if kind == "poll" then
    local readable = require("pollwait").readable
    wait = function(timeout) readable(fd, timeout) end
  else
    local select = require("socket").select
    local sockets = { { getfd = function() return fd end } } -- what socket.select asks of a socket
    wait = function(timeout) select(sockets, nil, timeout) end
  end
  -- K = 1, the plain loop: start one, poll it until it answers
  local function one_at_a_time(total)
    for _ = 1, total do
      local op = client:request_pin_async(fields)
      fd = fd or op:pollfd()
      local st = op:poll()
      while not st do
        wait(op:timeout())
        st = op:poll()
      end
      if not st.ok then return nil, st.message end
    end
    return true
  end
  -- K > 1: a window of K ops in flight
  local function window(total)
    local pending, np, started, finished = {}, 0, 0, 0
    local function start()
      local op = client:request_pin_async(fields)
      fd = fd or op:pollfd()
      started, np = started + 1, np + 1
      pending[np] = op
    end
    while started < total and np < inflight do start() end
    while finished < total do
      -- the oldest op's poll drives the transport; the others only need a look
      local keep, done_now = 0, 0
      for i = 1, np do
        local op, st = pending[i], nil
        if i == 1 or op:done() then st = op:poll() end
        if st then
          if not st.ok then return nil, st.message end
          finished, done_now = finished + 1, done_now + 1
        else
          keep = keep + 1
          pending[keep] = op
        end
      end
      for i = keep + 1, np do pending[i] = nil end
      np = keep
      while started < total and np < inflight do start() end
      if done_now == 0 and np > 0 then wait(pending[1]:timeout()) end
    end
    return true
  end
  many = inflight == 1 and one_at_a_time or window
elseif kind == "luasocket" then
  -- socket.http (with LuaSec's ssl.wrap for https://, as ssl.https does it). The socket gets
  -- TCP_NODELAY: LuaSocket writes the request line, the headers and the body separately, and
  -- without it the last write can wait for a delayed ACK (~40 ms a request over TLS here), which
  -- would measure the kernel, not LuaSocket/LuaSec. BENCH_LUASOCKET_NODELAY=0: library defaults.
  local socket = require "socket"
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local cjson = require "cjson"
  local concat = table.concat
  local url = base .. "2fa/request"
  local nodelay = os.getenv("BENCH_LUASOCKET_NODELAY") ~= "0"
  local try = socket.try
  -- LuaSec's own https.tcp(), with the option set once connected (a master socket refuses it)
  local function reg(conn) -- as in ssl/https.lua: forward the connected socket's methods
    for name, method in pairs(getmetatable(conn.sock).__index) do
      if type(method) == "function" then conn[name] = function(self, ...) return method(self.sock, ...) end end
    end
  end
  local wrap
  if url:match("^https:") then
    local ssl = require "ssl"
    -- LuaSec's defaults do not verify the peer: ask for it, with the bench CA.
    local params = { mode = "client", protocol = "any", verify = { "peer", "fail_if_no_peer_cert" },
                     cafile = cainfo, options = { "all", "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1" } }
    wrap = function(conn, host)
      conn.sock = try(ssl.wrap(conn.sock, params))
      conn.sock:sni(host)
      conn.sock:settimeout(60)
      try(conn.sock:dohandshake())
    end
  end
  local function create()
    local conn = { sock = try(socket.tcp()) }
    function conn:settimeout(t) return self.sock:settimeout(t) end
    function conn:connect(host, port)
      try(self.sock:connect(host, port))
      if nodelay then try(self.sock:setoption("tcp-nodelay", true)) end
      if wrap then wrap(self, host) end
      reg(self)
      return 1
    end
    return conn
  end
  local ua = "smsend-bench luasocket"
  many = each(function()
    -- the same JSON the module sends, encoded per request as a Lua caller would
    local body = cjson.encode{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    local out = {}
    local ok, code = http.request{
      url = url, method = "POST", create = create,
      headers = { ["user_key"] = P.USER_KEY, ["Access_token"] = P.TOKEN, ["Content-Type"] = "application/json",
                  ["Content-Length"] = tostring(#body), ["User-Agent"] = ua },
      source = ltn12.source.string(body), sink = ltn12.sink.table(out),
    }
    if not ok then return nil, code end
    if code ~= 200 then return nil, "HTTP " .. tostring(code) end
    local js = cjson.decode(concat(out))
    if js.status ~= "OK" then return nil, "status " .. tostring(js.status) end
    return true
  end)
elseif kind == "loop" then
  -- What the binding costs in Lua at the very least: the same argument table built per call,
  -- a result table of the same shape as the module's coming back. No C, no I/O.
  local function fake(t)
    local _ = t.recipient
    return { ok = true, status = 200, body = '{"status":"OK"}', message = "PIN sent", retryable = false, elapsed = 0.0001 }
  end
  local client = { request_pin = function(_, t) return fake(t) end }
  many = each(function()
    local st = client:request_pin{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, "?" end
    return true
  end)
else
  fail("unknown mode " .. tostring(mode))
end

local function status_kb(key)
  local f = io.open("/proc/self/status", "r")
  if not f then return -1 end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match(key .. ":%s*(%d+)")) or -1
end

if runs <= 0 then
  local ok, err = many(n)
  if not ok then fail(err) end
  print("done " .. n)
  os.exit(0)
end

local gettime = require("socket.core").gettime -- wall clock (gettimeofday)
local clock = os.clock                              -- process CPU time, all threads

local ok, err = many(1) -- warm-up: connect (and TLS handshake) outside the timed runs
if not ok then fail(err) end
for r = 1, runs do
  collectgarbage("collect")
  local w0, c0 = gettime(), clock()
  ok, err = many(n)
  if not ok then fail(err) end
  local w, c = gettime() - w0, clock() - c0
  -- twice: objects with a finalizer (the ops) are freed by the cycle after the one that finalizes them
  collectgarbage("collect")
  collectgarbage("collect")
  print(string.format("run %d wall=%.6f cpu=%.6f rss_kb=%d lua_kb=%d", r, w, c, status_kb("VmRSS"), math.floor(collectgarbage("count"))))
end
print(string.format("hwm_kb=%d", status_kb("VmHWM")))
