-- metrics_spec.lua — require("smsend.resty").metrics(): the Prometheus text summed over the workers
-- of one nginx. The example nginx (examples/openresty, 2 workers) is scraped on /metrics after
-- known traffic through the sandbox: exact counts, both workers in the sum, no going back when a
-- worker is killed or nginx reloads, no number, PIN or key in the text. A generated nginx checks
-- the outcomes smsend.resty answers itself (dict cooldown, busy) and the misuse rules; and
-- outside nginx resty.metrics() is smsend.metrics().
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local openresty = require "spec.support.openresty"
local socket = require "socket"
local cjson = helpers.cjson

package.path = helpers.repo_root .. "/lua/?.lua;" .. package.path

local smsend = require "smsend"
local resty = require "smsend.resty"

local UK, TOK = "SBXUSER", "SBXTOKEN"
local PHONE = "+393471234567" -- alice's, in examples/openresty/login2fa.lua

local function calls_name(op, outcome)
  return ('smsend_calls_total{op="%s",outcome="%s"}'):format(op, outcome)
end

-- name{labels} → number, and the names in text order.
local function parse(text)
  local values, order = {}, {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local name, v = line:match("^(%S+) (%S+)$")
      assert(name, "not a sample line: " .. line)
      values[name] = assert(tonumber(v), line)
      order[#order + 1] = name
    end
  end
  return values, order
end

-- The text with every sample's value left out: what must be the same in any two scrapes.
local function shape(text)
  return (text:gsub("\n([^#\n]%S*) %S+", "\n%1"))
end

-- Every sample that is not 0, except those named in `skip`.
local function nonzero(values, skip)
  local out = {}
  for name, v in pairs(values) do
    if v ~= 0 and not (skip and skip[name]) then out[name] = v end
  end
  return out
end

local decode = cjson.decode

local function chunked(head, rest)
  if head:lower():find("transfer%-encoding: chunked") then
    local out = {}
    while true do
      local size, after = rest:match("^(%x+)\r\n(.*)$")
      size = size and tonumber(size, 16)
      if not size or size == 0 then break end
      out[#out + 1] = after:sub(1, size)
      rest = after:sub(size + 3)
    end
    return table.concat(out)
  end
  return rest
end

-- A form POST sent now and collected later (the example reads urlencoded forms).
local function fire_form(port, path, body)
  local c = assert(socket.tcp())
  c:settimeout(10)
  assert(c:connect("127.0.0.1", port))
  assert(c:send(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    .. "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"):format(path, #body, body)))
  return c
end

local function collect_form(c)
  c:settimeout(15)
  local data, _, partial = c:receive("*a")
  c:close()
  data = data or partial
  local head, rest = data:match("^(.-)\r\n\r\n(.*)$")
  assert(head, "no answer")
  return tonumber(head:match("^HTTP/1%.%d (%d+)")), decode(chunked(head, rest))
end

local function form(port, path, body) return collect_form(fire_form(port, path, body)) end

local function get(port, path)
  local status, body, headers = openresty.http(port, "GET", path)
  assert(status, body)
  if (headers["transfer-encoding"] or ""):lower() == "chunked" then
    body = chunked("transfer-encoding: chunked", body)
  end
  return status, body, headers
end

-- Scrapes /metrics until ok(values) or 5 s; returns the values, the text and the headers.
local function scrape_until(port, ok)
  local deadline = socket.gettime() + 5
  while true do
    local status, text, headers = get(port, "/metrics")
    assert.are.equal(200, status, text)
    local values = parse(text)
    if ok(values) or socket.gettime() > deadline then return values, text, headers end
    socket.sleep(0.05)
  end
end

local function wait_for(port, expected)
  local function ok(v)
    for name, n in pairs(expected) do
      if v[name] ~= n then return false end
    end
    return true
  end
  local values, text, headers = scrape_until(port, ok)
  for name, n in pairs(expected) do assert.are.equal(n, values[name], name) end
  return values, text, headers
end

describe("resty.metrics() on the example nginx (2 workers)", function()
  local sb, ex
  local dir = helpers.repo_root .. "/examples/openresty"

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    ex = openresty.start{
      -- the example as it is, but for its port (reuseport: the kernel spreads the connections
      -- over both workers), 2 workers, the paths out of the prefix, and one location that tells
      -- the spec which worker answered and that worker's own counters
      conf = function(port)
        local t, n = openresty.example_conf(port, " reuseport"):gsub("\nworker_processes auto;", "\nworker_processes 2;")
        assert(n == 1)
        t, n = t:gsub("\n    location = /ping {", [[

    location = /t/worker {
      content_by_lua_block {
        local c = require("smsend").stats().calls
        ngx.say(require("cjson").encode{ pid = ngx.worker.pid(), request_pin = c.request_pin.ok })
      }
    }
%0]], 1)
        assert(n == 1)
        return t
      end,
      env = { SMSEND_BASE_URL = sb.base_url, SMSEND_USER_KEY = UK, SMSEND_ACCESS_TOKEN = TOK },
      workers = 2,
    }
  end)

  teardown(function()
    if ex then ex:stop() end
    if sb then helpers.stop_sandbox(sb) end
  end)

  -- n logins at once; → the login ids
  local function logins(n)
    local socks, ids = {}, {}
    for i = 1, n do socks[i] = fire_form(ex.port, "/login", "username=alice&password=wonderland") end
    for i, c in ipairs(socks) do
      local status, r = collect_form(c)
      assert.are.equal(200, status, cjson.encode(r))
      ids[i] = r.login_id
    end
    return ids
  end

  -- Each worker's own count of request_pin ok, asked until both workers have answered.
  local function per_worker()
    local seen, n = {}, 0
    for _ = 1, 200 do
      local status, body = get(ex.port, "/t/worker")
      assert.are.equal(200, status, body)
      local r = decode(body)
      if not seen[r.pid] then n = n + 1 end
      seen[r.pid] = r.request_pin
      if n == 2 then return seen end
    end
    error("only one worker answered /t/worker")
  end

  local expected = {}

  it("sums the counters of both workers after known traffic", function()
    local before = parse(select(2, get(ex.port, "/metrics")))
    assert.are.same({}, nonzero(before), "a fresh nginx has counted nothing")
    -- logins until each worker has sent PINs (the kernel chose the worker of each connection)
    local sent, ids, counts = 0, nil, nil
    for _ = 1, 10 do
      ids = logins(6)
      sent = sent + #ids
      counts = per_worker()
      local both = 0
      for _, k in pairs(counts) do if k > 0 then both = both + 1 end end
      if both == 2 then break end
    end
    local total, workers = 0, 0
    for pid, k in pairs(counts) do
      assert.is_true(k > 0, "worker " .. pid .. " sent no PIN")
      total, workers = total + k, workers + 1
    end
    assert.are.equal(2, workers)
    assert.are.equal(sent, total)

    local pin = assert(sb:last_pin(PHONE))
    local wrong = pin == "000000" and "111111" or "000000"
    local status, r = form(ex.port, "/login/verify", "login_id=" .. ids[1] .. "&pin=" .. wrong)
    assert.are.equal(401, status, cjson.encode(r))
    status, r = form(ex.port, "/login/verify", "login_id=" .. ids[1] .. "&pin=" .. pin)
    assert.are.equal(200, status, cjson.encode(r))

    local exchanges = sent + 2
    expected = {
      [calls_name("request_pin", "ok")] = sent,
      [calls_name("verify_pin", "wrong_pin")] = 1,
      [calls_name("verify_pin", "ok")] = 1,
      smsend_gateway_seconds_count = exchanges,
      ['smsend_gateway_seconds_bucket{le="+Inf"}'] = exchanges,
    }
    local values, text, headers = wait_for(ex.port, expected)
    assert.matches("^text/plain; version=0%.0%.4", headers["content-type"])
    -- nothing else happened: no login (token credentials), no other outcome
    local skip = { smsend_gateway_seconds_sum = true, smsend_connections_total = true }
    for name in pairs(values) do
      if name:find("^smsend_gateway_seconds_bucket") then skip[name] = true end
    end
    local rest = nonzero(values, skip)
    for name in pairs(expected) do rest[name] = nil end
    assert.are.same({}, rest)
    assert.is_true(values.smsend_gateway_seconds_sum > 0)
    assert.is_true(values.smsend_connections_total >= 1 and values.smsend_connections_total <= exchanges)
    -- the histogram's buckets are cumulative
    local last = 0
    for _, name in ipairs(select(2, parse(text))) do
      if name:find("^smsend_gateway_seconds_bucket") then
        assert.is_true(values[name] >= last, name)
        last = values[name]
      end
    end
    assert.are.equal(200, (ex:get("/ping")))
  end)

  it("has the names, types, labels and order of smsend.metrics(), and no number, PIN or key", function()
    local _, text = get(ex.port, "/metrics")
    assert.are.equal(shape(smsend.metrics()), shape(text))
    local pin = sb:last_pin(PHONE)
    local ops = { request_pin = true, verify_pin = true, login = true, check_session = true }
    local outcomes = { ok = true }
    for _, e in ipairs(smsend._internal.errors()) do outcomes[e.name] = true end
    for line in text:gmatch("[^\n]+") do
      if line:sub(1, 1) ~= "#" then
        local labels = line:match("^smsend_[%w_]+(%b{})") or ""
        for k, v in labels:gmatch('([%w_]+)="([^"]*)"') do
          if k == "op" then assert.is_true(ops[v], line)
          elseif k == "outcome" then assert.is_true(outcomes[v], line)
          else
            assert.are.equal("le", k, line)
            assert.is_truthy(v == "+Inf" or tonumber(v), line)
          end
        end
        assert.is_nil(labels:find(pin, 1, true), line)
      end
    end
    for _, secret in ipairs{ "3471234567", UK, TOK, "alice", "wonderland" } do
      assert.is_nil(text:find(secret, 1, true), secret)
    end
  end)

  it("never goes back when a worker is killed, and counts on", function()
    local values = wait_for(ex.port, expected) -- every worker has published all it did
    local victim = ex:worker_pids()[1]
    assert(helpers.sandbox.run("kill -KILL " .. victim))
    ex:wait_ready({ victim })
    values = wait_for(ex.port, expected)
    local key = calls_name("request_pin", "ok")
    assert.are.equal(expected[key], values[key])
    logins(2)
    expected[key] = expected[key] + 2
    expected.smsend_gateway_seconds_count = expected.smsend_gateway_seconds_count + 2
    expected['smsend_gateway_seconds_bucket{le="+Inf"}'] = expected.smsend_gateway_seconds_count
    wait_for(ex.port, expected)
  end)

  it("keeps the sums over a reload, with what the old workers did last", function()
    local key = calls_name("request_pin", "ok")
    -- right before the HUP, so that the old workers publish these as they exit
    logins(4)
    ex:reload()
    expected[key] = expected[key] + 4
    expected.smsend_gateway_seconds_count = expected.smsend_gateway_seconds_count + 4
    expected['smsend_gateway_seconds_bucket{le="+Inf"}'] = expected.smsend_gateway_seconds_count
    local _, body = get(ex.port, "/metrics") -- at once: no timer of the new workers is needed
    local values = parse(body)
    assert.are.equal(expected[key], values[key])
    assert.are.equal(expected.smsend_gateway_seconds_count, values.smsend_gateway_seconds_count)
    local log = ex:read_error_log()
    assert.is_nil(log:find("smsend.resty", 1, true), log)
  end)

  it("answers /metrics to loopback only", function()
    local text = assert(helpers.read_file(dir .. "/nginx.conf"))
    local block = text:match("location = /metrics (%b{})")
    assert.is_truthy(block)
    assert.matches("allow 127%.0%.0%.1;", block)
    assert.matches("deny all;", block)
  end)
end)

-- The Lua module the generated nginx's locations call.
local HANDLER = [==[
local resty = require "smsend.resty"
local nx = require "spec_nginx"
local M = {}

-- POST /t/many, body: { calls = { opts, ... }, keep = s }: all at once in light threads of this
-- worker; with keep, one more light thread sleeps that long (its timer is one that a gracefully
-- exiting worker waits for: a request waiting only for a worker thread has none)
function M.many()
  local b = nx.body()
  local calls, threads, out = b.calls, {}, {}
  if b.keep then ngx.thread.spawn(function() ngx.sleep(b.keep) end) end
  for i, o in ipairs(calls) do
    threads[i] = ngx.thread.spawn(function() return resty.request_pin(o) end)
  end
  for i, t in ipairs(threads) do
    local ok, st = ngx.thread.wait(t)
    out[i] = ok and st or { error = "lua: " .. tostring(st) }
  end
  nx.reply{ statuses = out }
end

-- GET /t/misuse: what resty.metrics() and resty.init_worker() say where they cannot work
function M.misuse()
  local out = {}
  local ok, err = pcall(resty.init_worker)
  out.init_worker = ok and "no error" or err
  local old = resty.configure{ metrics_dict = false }
  ok, err = pcall(resty.metrics)
  resty.configure(old)
  out.metrics_without_dict = ok and "no error" or err
  nx.reply(out)
end

function M.metrics()
  ngx.print(resty.metrics())
end

return M
]==]

describe("resty.metrics() with outcomes smsend.resty answers itself", function()
  local sb, ng

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    ng = openresty.start{
      workers = 2,
      thread_pools = { smsend = 2 },
      http = table.concat({
        "  lua_shared_dict smsend 1m;",
        "  lua_shared_dict smsend_metrics 1m;",
        "  lua_worker_thread_vm_pool_size 1;", -- a second call at once in a worker is busy
      }, "\n"),
      init = 'require("smsend.resty").configure{ shared_dict = "smsend", metrics_dict = "smsend_metrics",'
        .. ' metrics_interval = 0.2 }',
      init_worker = 'require("smsend.resty").init_worker()',
      server = table.concat({
        '    location = /t/many { content_by_lua_block { require("metrics_handler").many() } }',
        '    location = /t/misuse { content_by_lua_block { require("metrics_handler").misuse() } }',
        '    location = /metrics { content_by_lua_block { require("metrics_handler").metrics() } }',
      }, "\n"),
      lua_files = { ["metrics_handler.lua"] = HANDLER },
    }
  end)

  teardown(function()
    if ng then ng:stop() end
    if sb then helpers.stop_sandbox(sb) end
  end)

  local function opts(extra)
    local t = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  local function many(list)
    local status, b = openresty.http(ng.port, "POST", "/t/many", cjson.encode{ calls = list })
    assert.are.equal(200, status, b)
    return decode(b).statuses
  end

  it("counts busy and the dict's cooldown refusals, which never reach the module", function()
    -- one worker: a PIN held 500 ms at the gateway, a second call finding no free thread VM
    local st = many{ opts{ recipient = "+393470007001", base_url = sb.url_for("slow-500") },
                     opts{ recipient = "+393470007002" } }
    assert.is_true(st[1].ok, st[1].message)
    assert.are.equal("busy", st[2].error)
    -- a claim in the dict, then a refused one (no thread is taken for it)
    st = many{ opts{ recipient = "+393470007003", min_interval = 60 } }
    assert.is_true(st[1].ok, st[1].message)
    st = many{ opts{ recipient = "+393470007003", min_interval = 60 } }
    assert.are.equal("cooldown", st[1].error)
    -- a bad guard option, refused before any thread
    st = many{ opts{ recipient = "+393470007004", min_interval = -1 } }
    assert.are.equal("invalid_request", st[1].error)
    assert.are.equal("min_interval", st[1].field)

    local values = wait_for(ng.port, {
      [calls_name("request_pin", "ok")] = 2,
      [calls_name("request_pin", "busy")] = 1,
      [calls_name("request_pin", "cooldown")] = 1,
      [calls_name("request_pin", "invalid_request")] = 1,
      smsend_cooldown_refusals_total = 1,
      smsend_gateway_seconds_count = 2,
    })
    assert.are.equal(2, #sb:requests())
    assert.are.equal(0, values[calls_name("verify_pin", "ok")])
  end)

  it("counts a call that ends after its worker began to exit (reload)", function()
    sb:reset()
    local before = wait_for(ng.port, {})[calls_name("request_pin", "ok")]
    -- held 1 s at the gateway: the HUP comes while it is in flight, after the old worker's timer
    -- has run for the last time, and the worker lives on until the request ends
    local c = openresty.fire(ng.port, "POST", "/t/many", cjson.encode{ keep = 1.5,
      calls = { opts{ recipient = "+393470007005", base_url = sb.url_for("slow-1000") } } })
    local deadline = socket.gettime() + 5
    while #sb:requests() == 0 and socket.gettime() < deadline do socket.sleep(0.02) end
    assert.are.equal(1, #sb:requests())
    ng:reload()
    local status, b = openresty.collect(c)
    assert.are.equal(200, status, b)
    assert.is_true(decode(b).statuses[1].ok)
    local _, text = get(ng.port, "/metrics")
    assert.are.equal(before + 1, parse(text)[calls_name("request_pin", "ok")])
  end)

  it("answers a call in flight when its worker exits (reload): its SMS went out", function()
    sb:reset()
    -- no light thread of the test's own keeps the worker: smsend.resty's keeper must
    local c = openresty.fire(ng.port, "POST", "/t/many", cjson.encode{
      calls = { opts{ recipient = "+393470007006", base_url = sb.url_for("slow-1000") } } })
    local deadline = socket.gettime() + 5
    while #sb:requests() == 0 and socket.gettime() < deadline do socket.sleep(0.02) end
    assert.are.equal(1, #sb:requests())
    ng:reload()
    local status, b = openresty.collect(c)
    assert.are.equal(200, status, b)
    assert.is_true(decode(b).statuses[1].ok, b)
  end)

  it("raises where it cannot sum over the workers", function()
    local status, b = openresty.http(ng.port, "GET", "/t/misuse")
    assert.are.equal(200, status, b)
    local r = decode(b)
    assert.matches("call it from init_worker_by_lua", r.init_worker, 1, true)
    assert.matches("metrics_dict", r.metrics_without_dict, 1, true)
    assert.matches("init_worker", r.metrics_without_dict, 1, true)
  end)
end)

describe("resty.metrics() outside nginx", function()
  it("is this process's smsend.metrics()", function()
    smsend.request_pin{ recipient = "+0123456789" } -- refused before anything is sent
    local text = resty.metrics()
    assert.are.equal(smsend.metrics(), text)
    assert.is_true(parse(text)[calls_name("request_pin", "invalid_request")] >= 1)
  end)

  it("are each listed in docs/metrics.md with their type and labels", function()
    local doc = assert(helpers.read_file(helpers.repo_root .. "/docs/metrics.md"))
    local documented, written = {}, {}
    for name, kind, labels in doc:gmatch("\n| `(smsend_[%w_]+)` | (%w+) | ([^|]-) |") do
      local set = {}
      for l in labels:gmatch("`([%w_]+)`") do set[#set + 1] = l end
      table.sort(set)
      documented[name] = kind .. " " .. table.concat(set, ",")
    end
    local text = smsend.metrics()
    for name, kind in text:gmatch("\n?# TYPE (smsend_[%w_]+) (%w+)") do
      local set = {}
      for line in text:gmatch("[^\n]+") do
        local labels = line:match("^" .. name .. "[%w_]*(%b{}) ")
        for l in (labels or ""):gmatch('([%w_]+)="') do
          local seen = false
          for _, x in ipairs(set) do seen = seen or x == l end
          if not seen then set[#set + 1] = l end
        end
      end
      table.sort(set)
      written[name] = kind .. " " .. table.concat(set, ",")
    end
    assert.is_true(#doc > 0 and next(written) ~= nil)
    assert.are.same(written, documented)
    -- and the bucket bounds
    local bounds = {}
    for le in text:gmatch('smsend_gateway_seconds_bucket{le="([^"]+)"}') do bounds[#bounds + 1] = "`" .. le .. "`" end
    assert.matches((table.concat(bounds, ", "):gsub(", (`%+Inf`)$", " and %1")), doc, 1, true)
  end)

  it("checks the metrics settings, and init_worker needs nginx", function()
    assert.has_error(function() resty.configure{ metrics_dict = "" } end)
    assert.has_error(function() resty.configure{ metrics_dict = 1 } end)
    assert.has_error(function() resty.configure{ metrics_interval = 0 } end)
    assert.has_error(function() resty.configure{ metrics_interval = "1" } end)
    assert.has_error(function() resty.configure{ metrics_interval = math.huge } end)
    local old = resty.configure{ metrics_dict = "m", metrics_interval = 0.5 }
    assert.are.same({ metrics_dict = false, metrics_interval = 1 },
      { metrics_dict = old.metrics_dict, metrics_interval = old.metrics_interval })
    assert.are.equal("m", resty.settings().metrics_dict)
    assert.are.equal(0.5, resty.settings().metrics_interval)
    resty.configure(old)
    assert.are.same(old, resty.settings())
    assert.has_error(function() resty.init_worker() end, "smsend.resty.init_worker: call it from init_worker_by_lua")
  end)
end)
