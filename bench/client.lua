-- client.lua — one Lua client of `make bench`, run under lua5.4 or luajit.
--
--   <lua> bench/client.lua MODE BASE_URL CAINFO|- N RUNS
--
-- MODE:
--   object     local client = smsend.new{...}; client:request_pin{recipient=..., ...} per request
--   module     smsend.request_pin{user_key=..., access_token=..., base_url=..., cainfo=..., recipient=..., ...}
--   luasocket  socket.http POST (LuaSec for https://) with the same headers and body, the answer
--              collected with ltn12.sink.table and decoded with lua-cjson; a connection per request
--              (socket.http sends "Connection: close"), TCP_NODELAY set (see below)
--   loop       no I/O at all: builds the same request table and gets a small result table back
--              from a Lua function (the floor any Lua binding pays; used for scale only)
-- The smsend module is found through SMSEND_CPATH (a package.cpath entry).
-- RUNS > 0: one warm-up request, then RUNS timed runs of N requests; prints
--   "run <i> wall=<s> cpu=<s> rss_kb=<VmRSS after a full GC>" per run and "hwm_kb=<VmHWM>".
-- RUNS = 0: N untimed requests (for callgrind); prints "done <N>".
-- Any failed request: message on stderr, exit status 1.

local mode, base, cainfo, n, runs = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])
assert(mode and base and cainfo and n and runs, "usage: client.lua MODE BASE_URL CAINFO|- N RUNS")
if cainfo == "-" then cainfo = nil end

local cpath = os.getenv("SMSEND_CPATH")
if cpath and cpath ~= "" then package.cpath = cpath .. ";" .. package.cpath end

local RECIPIENT, SENDER, EXPIRY, MESSAGE = "+393471234567", "MyApp", 5, "Your code is %PIN%"
local USER_KEY, TOKEN = "UK", "TOK"

local function fail(msg)
  io.stderr:write("client.lua (", mode, "): ", tostring(msg), "\n")
  os.exit(1)
end

local one -- function() -> true | nil, err : one request

if mode == "object" then
  local smsend = require "smsend"
  local client = assert(smsend.new{ user_key = USER_KEY, access_token = TOKEN, base_url = base, cainfo = cainfo })
  one = function()
    local st = client:request_pin{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, st.message end
    return true
  end
elseif mode == "module" then
  local smsend = require "smsend"
  local request_pin = smsend.request_pin
  one = function()
    local st = request_pin{ user_key = USER_KEY, access_token = TOKEN, base_url = base, cainfo = cainfo,
                            recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, st.message end
    return true
  end
elseif mode == "luasocket" then
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
  one = function()
    -- the same JSON the module sends, encoded per request as a Lua caller would
    local body = cjson.encode{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    local out = {}
    local ok, code = http.request{
      url = url, method = "POST", create = create,
      headers = { ["user_key"] = USER_KEY, ["Access_token"] = TOKEN, ["Content-Type"] = "application/json",
                  ["Content-Length"] = tostring(#body), ["User-Agent"] = ua },
      source = ltn12.source.string(body), sink = ltn12.sink.table(out),
    }
    if not ok then return nil, code end
    if code ~= 200 then return nil, "HTTP " .. tostring(code) end
    local js = cjson.decode(concat(out))
    if js.status ~= "OK" then return nil, "status " .. tostring(js.status) end
    return true
  end
elseif mode == "loop" then
  -- What the binding costs in Lua at the very least: the same argument table built per call,
  -- a result table of the same shape as the module's coming back. No C, no I/O.
  local function fake(t)
    local _ = t.recipient
    return { ok = true, status = 200, body = '{"status":"OK"}', message = "PIN sent", retryable = false, elapsed = 0.0001 }
  end
  local client = { request_pin = function(_, t) return fake(t) end }
  one = function()
    local st = client:request_pin{ recipient = RECIPIENT, senderName = SENDER, expiry = EXPIRY, messageBody = MESSAGE }
    if not st.ok then return nil, "?" end
    return true
  end
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
  for _ = 1, n do
    local ok, err = one()
    if not ok then fail(err) end
  end
  print("done " .. n)
  os.exit(0)
end

local gettime = require("socket.core").gettime -- wall clock (gettimeofday)
local clock = os.clock                              -- process CPU time, all threads

local ok, err = one() -- warm-up: connect (and TLS handshake) outside the timed runs
if not ok then fail(err) end
for r = 1, runs do
  collectgarbage("collect")
  local w0, c0 = gettime(), clock()
  for _ = 1, n do
    ok, err = one()
    if not ok then fail(err) end
  end
  local w, c = gettime() - w0, clock() - c0
  collectgarbage("collect")
  print(string.format("run %d wall=%.6f cpu=%.6f rss_kb=%d", r, w, c, status_kb("VmRSS")))
end
print(string.format("hwm_kb=%d", status_kb("VmHWM")))
