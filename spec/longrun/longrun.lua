-- longrun.lua — many request_pin calls through ONE client against a local server, checking that
-- resident memory and open file descriptors stay flat (`make longrun`).
--
--   SMSEND_CPATH=build/lua5.4/?.so lua5.4 spec/longrun/longrun.lua [N [WARMUP [TARGET]]]
--
-- N = 100000 calls in all (LONGRUN_N), WARMUP = 5000 of them before the first measurement
-- (LONGRUN_WARMUP), TARGET = "fast" (default: an nginx `return 200 '{"status":"OK"}'` server added
-- to the sandbox, so the client is what is measured) or "sandbox" (the full Lua gateway, slower;
-- LONGRUN_TARGET). Limits: RSS growth below LONGRUN_MAX_RSS_KB (1024) KiB, fd growth 0.
-- Every call must succeed. Prints one line of figures; exits non-zero on any breach.
local cpath = os.getenv("SMSEND_CPATH")
if cpath and cpath ~= "" then package.cpath = cpath .. ";" .. package.cpath end

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/longrun"
local sandbox = dofile(here .. "/../../sandbox/launch.lua")
local socket = require "socket"
local smsend = require "smsend"

local function num(v, default)
  v = tonumber(v)
  if v and v == v then return math.floor(v) end
  return default
end

local N = num(arg[1] or os.getenv("LONGRUN_N"), 100000)
local WARMUP = num(arg[2] or os.getenv("LONGRUN_WARMUP"), 5000)
local TARGET = arg[3] or os.getenv("LONGRUN_TARGET") or "fast"
local MAX_RSS_KB = num(os.getenv("LONGRUN_MAX_RSS_KB"), 1024)
assert(N > WARMUP and WARMUP > 0, "N must be larger than WARMUP")
assert(TARGET == "fast" or TARGET == "sandbox", "TARGET is fast or sandbox")

-- this process's pid: /proc/self in a popen'ed shell would be the shell
local PID = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")

local function rss_kb()
  local f = assert(io.open("/proc/" .. PID .. "/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+) kB"))
end

-- open descriptors, by target (the popen pipe itself is open during both counts alike)
local function fds()
  local p = assert(io.popen("ls -l /proc/" .. PID .. "/fd 2>/dev/null"))
  local n, kinds = 0, {}
  for line in p:lines() do
    local target = line:match("%->%s*(.+)$")
    if target then
      n = n + 1
      local kind = target:match("^(%a+):") or "file"
      kinds[kind] = (kinds[kind] or 0) + 1
    end
  end
  p:close()
  local parts = {}
  for k, v in pairs(kinds) do parts[#parts + 1] = k .. "=" .. v end
  table.sort(parts)
  return n, table.concat(parts, ",")
end

local function settle()
  collectgarbage("collect")
  collectgarbage("collect")
end

local fast_port = sandbox.free_port()
local sb = sandbox.start{
  tls = false,
  extra_http_conf = ([[
  server {
    listen 127.0.0.1:%d;
    access_log off;
    keepalive_requests 10000000;
    location / {
      default_type application/json;
      return 200 '{"status":"OK"}';
    }
  }]]):format(fast_port),
}

local base_url = TARGET == "fast" and ("http://127.0.0.1:%d/API/v1.0/REST/"):format(fast_port) or sb.base_url
local ok, err = pcall(function()
  local c = assert(smsend.new{ user_key = "SBXUSER", access_token = "SBXTOKEN", base_url = base_url, timeout = 10 })
  local q = { recipient = "+393471234567", senderName = "LongRun", messageBody = "Your code is %PIN%" }
  local failures, first_failure = 0, nil
  local function calls(from, to)
    for i = from, to do
      local st = c:request_pin(q)
      if not st.ok then
        failures = failures + 1
        first_failure = first_failure or ("call %d: %s %s"):format(i, tostring(st.error), tostring(st.message))
      end
    end
  end
  local t0 = socket.gettime()
  calls(1, WARMUP)
  settle()
  local rss0, fd0, fdk0 = rss_kb(), fds()
  local t1 = socket.gettime()
  calls(WARMUP + 1, N)
  local t2 = socket.gettime()
  settle()
  local rss1, fd1, fdk1 = rss_kb(), fds()
  c:close()
  print(("longrun: %d request_pin via one client (%s target), %d failed; RSS after %d warm-up: %d KiB, "
    .. "at the end: %d KiB (growth %+d KiB, limit %d); fds %d -> %d (%s -> %s); %.1f s, %.0f calls/s")
    :format(N, TARGET, failures, WARMUP, rss0, rss1, rss1 - rss0, MAX_RSS_KB, fd0, fd1, fdk0, fdk1,
      t2 - t0, (N - WARMUP) / (t2 - t1)))
  local problems = {}
  if failures > 0 then problems[#problems + 1] = failures .. " calls failed, first: " .. first_failure end
  if rss1 - rss0 >= MAX_RSS_KB then problems[#problems + 1] = "resident memory grew by " .. (rss1 - rss0) .. " KiB" end
  if fd1 ~= fd0 then problems[#problems + 1] = "open descriptors went from " .. fd0 .. " to " .. fd1 end
  if #problems > 0 then error(table.concat(problems, "; "), 0) end
end)
sb:stop()
if not ok then
  io.stderr:write("longrun: FAILED: ", tostring(err), "\n")
  os.exit(1)
end
print("longrun: ok")
