-- bench/openresty/run.lua — run by bench/openresty/run.sh from the repository root. Starts the
-- sandbox gateway and a 1-worker nginx per thread-pool size, drives them with wrk, and prints (and
-- writes to $BENCH_OUT/openresty.md) two Markdown tables: PIN requests/s through
-- ngx.run_worker_thread with pools of 1, 4 and 16 threads (and a direct call for contrast), and the
-- latency of a plain /ping while PIN requests wait on a slow gateway, worker thread vs direct call.
-- A benchmark, not a test: nothing here fails on a number.

package.path = "./?.lua;" .. package.path
local socket = require "socket"
local openresty = require "spec.support.openresty"
local helpers = require "spec.support.helpers"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local OUT = env("BENCH_OUT", "build/bench")
local DURATION = tonumber(env("BENCH_DURATION", "5"))      -- seconds per wrk run
local RUNS = tonumber(env("BENCH_RUNS", "3"))              -- wrk runs per throughput row (median)
local CONNS = tonumber(env("BENCH_CONNECTIONS", "64"))     -- wrk connections for PIN requests
local POOLS = {}
for n in env("BENCH_POOLS", "1,4,16"):gmatch("%d+") do POOLS[#POOLS + 1] = tonumber(n) end
local SLOW = env("BENCH_SLOW_MS", "50")                    -- gateway latency of the second series
local PING_SLOW = env("BENCH_PING_SLOW_MS", "200")         -- gateway latency during the /ping runs
local PING_LOAD = tonumber(env("BENCH_PING_LOAD", "16"))   -- PIN connections during the /ping runs
local PING_POOL = tonumber(env("BENCH_PING_POOL", "16"))
local PING_RATE = tonumber(env("BENCH_PING_RATE", "20"))   -- /ping probes per second

local shq = helpers.shell_quote

local capture = helpers.sandbox.capture

local function trim(s) return (s or ""):gsub("^%s+", ""):gsub("%s+$", "") end

local read_file = helpers.read_file

-- wrk's "1.23ms" / "456.00us" / "2.01s" → milliseconds
local function ms(v)
  if not v then return nil end
  local n, unit = v:match("^([%d%.]+)(%a+)$")
  n = tonumber(n)
  if not n then return nil end
  if unit == "us" then return n / 1000 end
  if unit == "ms" then return n end
  if unit == "s" then return n * 1000 end
  if unit == "m" then return n * 60000 end
  return nil
end

local function parse_wrk(out)
  local r = {
    rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")),
    requests = tonumber(out:match("(%d+) requests in")),
    non2xx = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0,
    p50 = ms(out:match("\n%s*50%%%s+(%S+)")),
    p99 = ms(out:match("\n%s*99%%%s+(%S+)")),
    max = ms(out:match("Latency%s+%S+%s+%S+%s+(%S+)")),
  }
  local errs = 0
  for n in (out:match("Socket errors:([^\n]*)") or ""):gmatch("%d+") do errs = errs + tonumber(n) end
  r.errors = errs
  if not r.rps then r.raw = out end
  return r
end

local function wrk_cmd(url, conns, threads, seconds)
  return ("wrk -t%d -c%d -d%ds --timeout 30s --latency %s 2>&1"):format(threads, conns, seconds, shq(url))
end

local function wrk(url, conns, threads, seconds)
  return parse_wrk(capture(wrk_cmd(url, conns, threads, seconds)))
end

-- RUNS runs of wrk; the one with the median requests/s (failures summed over all runs).
local function wrk_median(url, conns, threads, seconds, between)
  local runs, failed = {}, 0
  for i = 1, RUNS do
    if i > 1 and between then between() end
    local r = wrk(url, conns, threads, seconds)
    r.rps = r.rps or 0
    failed = failed + r.non2xx + r.errors
    runs[#runs + 1] = r
  end
  table.sort(runs, function(a, b) return a.rps < b.rps end)
  local m = runs[math.ceil(#runs / 2)]
  m.failed = failed
  return m
end

local function fmt(v, digits)
  if not v then return "n/a" end
  return ("%." .. (digits or 1) .. "f"):format(v)
end

-- Open-loop /ping prober: a new connection every 1/rate s whatever happened to the previous ones
-- (so a stalled event loop shows as latency, not as fewer samples). → stats in ms.
local function percentile(sorted, p)
  if #sorted == 0 then return nil end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

local function probe(port, seconds, rate)
  local req = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
  local pending, lat, failed = {}, {}, 0
  local t0 = socket.gettime()
  local stop, give_up = t0 + seconds, t0 + seconds + 30
  local next_t = t0
  while true do
    local now = socket.gettime()
    if now >= next_t and now < stop then
      next_t = next_t + 1 / rate
      local c = socket.tcp()
      c:settimeout(2)
      if c:connect("127.0.0.1", port) and c:send(req) then
        c:settimeout(0)
        pending[#pending + 1] = { sock = c, t0 = now, buf = "" }
      else
        c:close()
        failed = failed + 1
      end
    end
    if #pending == 0 and now >= stop then break end
    if now > give_up then
      failed = failed + #pending
      for _, p in ipairs(pending) do p.sock:close() end
      break
    end
    local socks = {}
    for i, p in ipairs(pending) do socks[i] = p.sock end
    local readable = (#socks > 0) and socket.select(socks, nil, 0.002) or {}
    if #socks == 0 then socket.sleep(0.002) end
    local ready = {}
    for _, s in ipairs(readable) do ready[s] = true end
    for i = #pending, 1, -1 do
      local p = pending[i]
      if ready[p.sock] then
        local data, err, partial = p.sock:receive("*a")
        p.buf = p.buf .. (data or partial or "")
        if data or err == "closed" then
          local done = socket.gettime()
          p.sock:close()
          table.remove(pending, i)
          if p.buf:match("^HTTP/1%.%d 200") then lat[#lat + 1] = (done - p.t0) * 1000
          else failed = failed + 1 end
        end
      end
    end
  end
  table.sort(lat)
  return { n = #lat, failed = failed, p50 = percentile(lat, 0.5), p99 = percentile(lat, 0.99),
    max = lat[#lat] }
end

-- Waits until the worker is idle again. When wrk stops, the requests it had sent are still queued:
-- in the event loop (direct calls) or in the thread pool's queue. One more PIN request of the same
-- kind waits behind all of them (both queues are FIFO), then /ping must answer at once.
local function settle(port, pin_path)
  if pin_path then openresty.http(port, "GET", pin_path, nil, 120) end
  local deadline, fast = socket.gettime() + 60, 0
  while socket.gettime() < deadline and fast < 3 do
    local t = socket.gettime()
    local status = openresty.http(port, "GET", "/ping", nil, 30)
    fast = (status == 200 and socket.gettime() - t < 0.02) and fast + 1 or 0
    socket.sleep(0.05)
  end
end

-- nginx under test ---------------------------------------------------------------------------

local HANDLER = [==[
local resty = require "smsend.resty"
local smsend = require "smsend"
local M = {}
local ROOT = %q

-- /pin?mode=thread|direct[&fault=slow-200]: one PIN request, 200 "ok" or 502 with the error
function M.pin()
  local fault = ngx.var.arg_fault
  local o = {
    recipient = "+393471234567", user_key = "SBXUSER", access_token = "SBXTOKEN", timeout = 10,
    base_url = fault and (ROOT .. "/fault/" .. fault .. "/") or (ROOT .. "/API/v1.0/REST/"),
  }
  local st
  if ngx.var.arg_mode == "direct" then
    st = smsend.request_pin(o)   -- blocks this worker's event loop for the whole call
  else
    st = resty.request_pin(o)    -- waits in a worker thread; the event loop goes on
  end
  if st.ok then
    ngx.say("ok")
  else
    ngx.status = 502
    ngx.say(st.error, ": ", st.message)
  end
end

return M
]==]

local function start_nginx(sb, threads)
  local root = sb.base_url:match("^(http://[^/]+)")
  return openresty.start{
    workers = 1,
    thread_pools = { smsend = threads },
    access_log = false,
    http = "  lua_worker_thread_vm_pool_size 256;",
    lua_files = { ["bench_handler.lua"] = HANDLER:format(root) },
    server = [[
    location = /pin { content_by_lua_block { require("bench_handler").pin() } }
]],
  }
end

-- main -------------------------------------------------------------------------------------------

assert(capture("command -v wrk"):find("wrk"), "wrk is missing (apt-get install wrk)")
local t_start = socket.gettime()
local sb = helpers.start_sandbox{ tls = false, console = false }
local nginxes = {}
local ok, err = pcall(function()
  local rows = {}
  local function row(path, pool, gateway, r)
    rows[#rows + 1] = ("| %s | %s | %s | %s | %s | %s | %d |"):format(path, pool, gateway,
      fmt(r.rps, 0), fmt(r.p50), fmt(r.p99), r.failed)
    io.stderr:write(rows[#rows], "\n")
    if r.raw then io.stderr:write(r.raw, "\n") end
  end

  local by_pool = {}
  for _, n in ipairs(POOLS) do
    by_pool[n] = start_nginx(sb, n)
    nginxes[#nginxes + 1] = by_pool[n]
  end
  local biggest = by_pool[POOLS[#POOLS]]

  for _, gw in ipairs({ { nil, "immediate" }, { "slow-" .. SLOW, "+" .. SLOW .. " ms" } }) do
    local q = gw[1] and ("&fault=" .. gw[1]) or ""
    for _, n in ipairs(POOLS) do
      sb:reset()
      local path = "/pin?mode=thread" .. q
      wrk(by_pool[n]:url(path), 4, 1, 1) -- warm-up: thread VMs, connections
      local function between() settle(by_pool[n].port, path) sb:reset() end
      between()
      row("`ngx.run_worker_thread` (smsend.resty)", tostring(n), gw[2],
        wrk_median(by_pool[n]:url(path), CONNS, 2, DURATION, between))
      if os.getenv("BENCH_DEBUG") and gw[1] then
        local reqs = sb:requests()
        local conns = {}
        for _, r in ipairs(reqs) do conns[r.connection] = true end
        local nc = 0
        for _ in pairs(conns) do nc = nc + 1 end
        io.stderr:write(("  gateway: %d requests over %d connections, %.1f s\n"):format(#reqs, nc,
          #reqs > 1 and reqs[#reqs].time - reqs[1].time or 0))
      end
      settle(by_pool[n].port, path)
    end
    local direct = "/pin?mode=direct" .. q
    settle(biggest.port, direct)
    sb:reset()
    row("direct call in `content_by_lua`", "—", gw[2],
      wrk_median(biggest:url(direct), CONNS, 2, DURATION,
        function() settle(biggest.port, direct) sb:reset() end))
    settle(biggest.port, direct)
  end

  -- /ping while PIN requests wait on a slow gateway
  local ping_threads = by_pool[PING_POOL] and PING_POOL or POOLS[#POOLS]
  local ping_ng = by_pool[ping_threads]
  local ping_rows = {}
  for _, mode in ipairs({ "thread", "direct" }) do
    sb:reset()
    local loadfile = os.tmpname()
    local load_secs = DURATION + 3
    os.execute(("%s >%s 2>&1 </dev/null &"):format(
      wrk_cmd(ping_ng:url("/pin?mode=" .. mode .. "&fault=slow-" .. PING_SLOW), PING_LOAD, 1, load_secs)
        :gsub(" 2>&1$", ""), shq(loadfile)))
    socket.sleep(1)
    local ping = probe(ping_ng.port, DURATION, PING_RATE)
    local deadline = socket.gettime() + load_secs + 40
    local load
    repeat
      socket.sleep(0.2)
      local out = read_file(loadfile) or ""
      if out:find("Transfer/sec", 1, true) or out:find("Requests/sec", 1, true) then load = parse_wrk(out) end
    until load or socket.gettime() > deadline
    os.remove(loadfile)
    load = load or { non2xx = 0, errors = 0 }
    ping_rows[#ping_rows + 1] = ("| %s | %s | %s | %s | %d / %d | %s |"):format(
      mode == "thread" and ("`ngx.run_worker_thread`, pool of " .. ping_threads)
        or "direct call in `content_by_lua`",
      fmt(ping.p50, 2), fmt(ping.p99, 2), fmt(ping.max, 2), ping.n, ping.n + ping.failed, fmt(load.rps, 1))
    io.stderr:write(ping_rows[#ping_rows], "\n")
    settle(ping_ng.port, "/pin?mode=" .. mode .. "&fault=slow-" .. PING_SLOW)
  end

  local nginx_v = trim(capture("nginx -v 2>&1")):gsub("^nginx version: ", "")
  local lua_v = trim(capture("dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null"))
  local cpu = trim(capture("nproc"))
  local md = {
    "## smsend in OpenResty: worker threads vs a direct call",
    "",
    ("%s, libnginx-mod-http-lua %s, LuaJIT build of smsend; one nginx worker process; the sandbox "
      .. "gateway on loopback (one nginx process); wrk on the same %s-core machine."):format(
      nginx_v, lua_v ~= "" and lua_v or "?", cpu),
    "",
    ("### PIN requests per second (wrk, %d connections; median of %d runs of %d s)"):format(CONNS, RUNS, DURATION),
    "",
    "With an immediate gateway the rows are CPU-bound (wrk, nginx and the sandbox share the cores) and "
      .. "vary a lot from run to run; with a slow gateway they are bound by threads / latency and repeat "
      .. "within a few percent.",
    "",
    "| path | thread pool | gateway latency | PIN requests/s | p50 ms | p99 ms | failed |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
  }
  for _, r in ipairs(rows) do md[#md + 1] = r end
  md[#md + 1] = ""
  md[#md + 1] = ("### `/ping` (`return 200`) while %d connections request PINs through a gateway that takes %s ms")
    :format(PING_LOAD, PING_SLOW)
  md[#md + 1] = ""
  md[#md + 1] = ("A new connection to `/ping` every %.0f ms for %d s, whether or not the earlier ones were "
    .. "answered; latency is connect to last byte."):format(1000 / PING_RATE, DURATION)
  md[#md + 1] = ""
  md[#md + 1] = "| PIN calls made by | /ping p50 ms | /ping p99 ms | /ping max ms | pings answered | PIN requests/s |"
  md[#md + 1] = "| --- | ---: | ---: | ---: | ---: | ---: |"
  for _, r in ipairs(ping_rows) do md[#md + 1] = r end
  md[#md + 1] = ""
  md[#md + 1] = ("Measured by `bench/openresty/run.sh` in %.0f s."):format(socket.gettime() - t_start)
  local text = table.concat(md, "\n") .. "\n"
  os.execute("mkdir -p " .. shq(OUT))
  local f = assert(io.open(OUT .. "/openresty.md", "wb"))
  f:write(text)
  f:close()
  io.write("\n", text)
  io.write("\nwritten to ", OUT, "/openresty.md\n")
end)
for _, ng in ipairs(nginxes) do ng:stop() end
helpers.stop_sandbox(sb)
if not ok then
  io.stderr:write("bench/openresty: ", tostring(err), "\n")
  os.exit(1)
end
