-- connect_proxy.lua — a small HTTP CONNECT proxy for the specs, run as a child process:
--   lua5.4 spec/support/connect_proxy.lua PORT LOGFILE
-- It tunnels to loopback targets only, logs one line per request it received ("CONNECT host:port"
-- or "PLAIN <request line>" for anything that is not a tunnel, which it refuses with 403), and
-- relays bytes both ways with select until either side closes. It stops by itself after 120 s.
local socket = require "socket"

local port, logfile = tonumber(arg[1]), arg[2]
local server = assert(socket.bind("127.0.0.1", port))
server:settimeout(0)
local log = assert(io.open(logfile, "a"))
log:setvbuf("line")

local peer_of = {}   -- socket -> the other end of its tunnel
local pending = {}   -- accepted client -> request text read so far
local deadline = socket.gettime() + 120

local function close_pair(s)
  local o = peer_of[s]
  peer_of[s] = nil
  if o then peer_of[o] = nil; o:close() end
  s:close()
end

local function handle_request(c, text)
  local line = text:match("^([^\r\n]*)")
  local target = line:match("^CONNECT (%S+) HTTP/1%.[01]$")
  if not target then
    log:write("PLAIN ", line, "\n")
    c:send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    c:close()
    return
  end
  log:write("CONNECT ", target, "\n")
  local host, tport = target:match("^%[?([^%]]+)%]?:(%d+)$")
  if host ~= "127.0.0.1" and host ~= "localhost" and host ~= "::1" then
    c:send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    c:close()
    return
  end
  local up = socket.tcp()
  up:settimeout(2)
  if not up:connect(host == "localhost" and "127.0.0.1" or host, tonumber(tport)) then
    c:send("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    c:close()
    return
  end
  up:settimeout(0)
  c:send("HTTP/1.1 200 Connection established\r\n\r\n")
  peer_of[c], peer_of[up] = up, c
end

while socket.gettime() < deadline do
  local watch = { server }
  for s in pairs(peer_of) do watch[#watch + 1] = s end
  for s in pairs(pending) do watch[#watch + 1] = s end
  local ready = socket.select(watch, nil, 0.5)
  for _, s in ipairs(ready) do
    if s == server then
      local c = server:accept()
      if c then c:settimeout(0); pending[c] = "" end
    elseif pending[s] then
      local data, err, partial = s:receive(4096)
      local got = data or partial or ""
      pending[s] = pending[s] .. got
      if pending[s]:find("\r\n\r\n", 1, true) then
        local text = pending[s]
        pending[s] = nil
        handle_request(s, text)
      elseif err == "closed" then
        pending[s] = nil
        s:close()
      end
    elseif peer_of[s] then
      local data, err, partial = s:receive(16384)
      local got = data or partial
      if got and #got > 0 then peer_of[s]:send(got) end
      if err == "closed" then close_pair(s) end
    end
  end
end
