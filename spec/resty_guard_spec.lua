-- resty_guard_spec.lua — smsend.resty's claims in a lua_shared_dict, against a real nginx with 2
-- workers and the sandbox gateway: one PIN per number for a burst spread over both workers, refused
-- claims without a thread, release after a call that sent nothing, pins_per_window, guard_fail
-- both ways, keys without digits of the number, and the "busy" / out_of_memory bridge codes.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local openresty = require "spec.support.openresty"
local cjson = helpers.cjson

local UK, TOK = "SBXUSER", "SBXTOKEN"
local RCPT = "+393471234567"

package.path = helpers.repo_root .. "/lua/?.lua;" .. package.path

-- The Lua module the test locations call (written into the nginx prefix).
local HANDLER = [==[
local resty = require "smsend.resty"
local nx = require "spec_nginx"
local send, body = nx.reply, nx.body
local M = {}

local function outcome(st)
  local seen = ngx.ctx.thread_opts or {}
  return {
    status = st, thread_calls = ngx.ctx.thread_calls or 0, worker = ngx.worker.pid(),
    thread_min_interval = seen.min_interval, thread_pins = seen.pins_per_window,
    thread_window = seen.window, thread_guard = seen.guard, thread_guard_fail = seen.guard_fail,
  }
end

-- POST /t/call?op=..[&pool=..], body: opts
function M.call()
  local pool = ngx.var.arg_pool
  send(outcome(resty[ngx.var.arg_op or "request_pin"](body(), pool and { pool = pool } or nil)))
end

-- POST /t/many, body: { calls = { { opts =, pool = }, ... } }: all at once in light threads of this
-- one worker (its thread pools and thread VMs), the first ones started first
function M.many()
  local calls, threads, out = body().calls, {}, {}
  for i, c in ipairs(calls) do
    threads[i] = ngx.thread.spawn(function()
      return resty.request_pin(c.opts, c.pool and { pool = c.pool } or nil)
    end)
    if c.pause then ngx.sleep(c.pause) end
  end
  for i, t in ipairs(threads) do
    local ok, st = ngx.thread.wait(t)
    out[i] = ok and st or { error = "lua: " .. tostring(st) }
  end
  send{ statuses = out }
end

-- POST /t/stub?msg=..: one call while ngx.run_worker_thread answers false, msg (for nginx failures
-- that cannot be provoked on purpose)
function M.stub()
  local real, msg = ngx.run_worker_thread, ngx.unescape_uri(ngx.var.arg_msg)
  ngx.run_worker_thread = function() return false, msg end
  local ok, st = pcall(resty.request_pin, body())
  ngx.run_worker_thread = real
  send(outcome(ok and st or { error = "lua: " .. tostring(st) }))
end

-- POST /t/nodict, body: opts: one call while the configured dict does not exist
function M.nodict()
  local old = resty.configure{ shared_dict = "nosuch" }
  local st = resty.request_pin(body())
  resty.configure(old)
  send(outcome(st))
end

-- GET /t/keys: every key of the claims dict with its ttl and value
function M.keys()
  local d, out = ngx.shared.smsend, {}
  for _, k in ipairs(d:get_keys(0)) do
    out[#out + 1] = { key = k, ttl = d:ttl(k), value = d:get(k) }
  end
  send{ keys = out }
end

-- POST /t/set?key=..&value=..: plants a value in the claims dict (a broken counter)
function M.set()
  send{ ok = ngx.shared.smsend:set(ngx.var.arg_key, ngx.var.arg_value, 60) }
end

function M.flush()
  ngx.shared.smsend:flush_all()
  send{ ok = true }
end

return M
]==]

local LOCATIONS = [[
      location = /t/call { content_by_lua_block { require("guard_handler").call() } }
      location = /t/many { content_by_lua_block { require("guard_handler").many() } }
      location = /t/stub { content_by_lua_block { require("guard_handler").stub() } }
      location = /t/nodict { content_by_lua_block { require("guard_handler").nodict() } }
      location = /t/keys { content_by_lua_block { require("guard_handler").keys() } }
      location = /t/set { content_by_lua_block { require("guard_handler").set() } }
      location = /t/flush { content_by_lua_block { require("guard_handler").flush() } }
]]

-- Counts the thread calls of each request and keeps the opts the thread got.
local INIT = [[
    local run = ngx.run_worker_thread
    ngx.run_worker_thread = function(pool, mod, fn, opts, ...)
      ngx.ctx.thread_calls = (ngx.ctx.thread_calls or 0) + 1
      ngx.ctx.thread_opts = opts
      return run(pool, mod, fn, opts, ...)
    end
    require("smsend.resty").configure{ shared_dict = "smsend" }
]]

local function decode(b)
  local ok, v = pcall(cjson.decode, b or "")
  assert(ok, "not JSON: " .. tostring(b))
  return v
end

describe("smsend.resty claims in a lua_shared_dict", function()
  local sb, ng, port

  local function opts(extra)
    local t = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5, recipient = RCPT }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  local function post(path, t)
    local status, b = openresty.http(port, "POST", path, cjson.encode(t))
    assert.are.equal(200, status, b)
    return decode(b)
  end

  local function call(o, query) return post("/t/call?op=request_pin" .. (query or ""), o) end

  local function sent(path)
    return #sb:requests(path or "2fa/request")
  end

  local function dict_keys()
    local status, b = openresty.http(port, "GET", "/t/keys")
    assert.are.equal(200, status)
    return decode(b).keys
  end

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    port = helpers.sandbox.free_port()
    ng = openresty.start{
      workers = 2,
      thread_pools = { smsend = 4 },
      http = table.concat({
        "  lua_shared_dict smsend 1m;",
        -- as many thread VMs as the smsend pool has threads: a burst must not need more
        "  lua_worker_thread_vm_pool_size 4;",
        -- reuseport: the kernel spreads the connections over both workers
        ("  server {\n    listen 127.0.0.1:%d reuseport;\n%s  }"):format(port, LOCATIONS),
      }, "\n"),
      lua_files = { ["guard_handler.lua"] = HANDLER },
      init = INIT,
    }
  end)

  teardown(function()
    if ng then ng:stop() end
    if sb then helpers.stop_sandbox(sb) end
  end)

  before_each(function()
    sb:reset()
    post("/t/flush", {})
  end)

  it("lets 50 concurrent requests for one number on 2 workers reach the gateway once", function()
    -- the one that goes out is held 300 ms at the gateway, so the others arrive while it is in flight
    local body = cjson.encode(opts{ min_interval = 60, base_url = sb.url_for("slow-300") })
    local socks = {}
    for i = 1, 50 do socks[i] = openresty.fire(port, "POST", "/t/call?op=request_pin", body) end
    local ok, cooldown, workers, threads = 0, 0, {}, 0
    for _, s in ipairs(socks) do
      local status, b = openresty.collect(s)
      assert.are.equal(200, status, b)
      local r = decode(b)
      workers[r.worker] = (workers[r.worker] or 0) + 1
      threads = threads + r.thread_calls
      if r.status.ok then
        ok = ok + 1
        assert.are.equal(0, r.thread_min_interval) -- the thread does not claim again
      else
        assert.are.equal("cooldown", r.status.error, r.status.message)
        assert.is_false(r.status.retryable)
        assert.is_true(r.status.retry_after >= 59 and r.status.retry_after <= 60, tostring(r.status.retry_after))
        assert.are.equal(0, r.thread_calls) -- refused without taking a thread
        cooldown = cooldown + 1
      end
    end
    local n_workers = 0
    for _ in pairs(workers) do n_workers = n_workers + 1 end
    assert.are.equal(2, n_workers, "the burst did not reach both workers")
    assert.are.equal(1, ok)
    assert.are.equal(49, cooldown)
    assert.are.equal(1, threads)
    assert.are.equal(1, sent()) -- counted on the gateway's side
    -- "0039..." is the same number
    local again = call(opts{ min_interval = 60, recipient = "0039 347 123 4567" })
    assert.are.equal("cooldown", again.status.error)
    assert.are.equal(1, sent())
  end)

  it("keeps no digits of the number in the dict's keys, and uses smsend.guard_key", function()
    local other = "+447700900123"
    assert.is_true(call(opts{ min_interval = 60 }).status.ok)
    assert.is_true(call(opts{ recipient = other, min_interval = 60, pins_per_window = 3, window = 60 }).status.ok)
    local keys = dict_keys()
    assert.are.equal(3, #keys) -- two cooldowns and one window count
    for _, k in ipairs(keys) do
      assert.matches("^smsend:v1:%x+:[cw]$", k.key)
      for _, num in ipairs{ RCPT, other } do
        local digits = num:sub(2)
        for i = 1, #digits - 4 do
          assert.is_nil(k.key:find(digits:sub(i, i + 4), 1, true), k.key .. " holds digits of " .. num)
        end
      end
      assert.is_true(k.ttl > 0 and k.ttl <= 60, k.key)
    end
    -- the key is the module's, computed here outside nginx the same way
    local smsend = require "smsend"
    local want = smsend.guard_key(RCPT, { user_key = UK })
    local found = false
    for _, k in ipairs(keys) do found = found or k.key == want .. ":c" end
    assert.is_true(found, want)
  end)

  it("gives the claim back when the call sent nothing, and keeps it when it may have", function()
    local dead = "http://127.0.0.1:1/API/v1.0/REST/"
    local r = call(opts{ min_interval = 60, base_url = dead })
    assert.are.equal("connect_failed", r.status.error)
    assert.is_true(r.status.retryable)
    -- released: the next request goes out
    r = call(opts{ min_interval = 60 })
    assert.is_true(r.status.ok, r.status.message)
    assert.are.equal(1, sent())
    -- a timeout after sending keeps the claim
    local num = "+393470000077"
    r = call(opts{ recipient = num, min_interval = 60, base_url = sb.url_for("slow-2000"), timeout = 0.5 })
    assert.are.equal("timeout", r.status.error)
    assert.is_false(r.status.retryable)
    r = call(opts{ recipient = num, min_interval = 60 })
    assert.are.equal("cooldown", r.status.error)
    assert.are.equal(0, r.thread_calls)
    -- the module's own check in the thread (nothing sent): released too
    r = call(opts{ recipient = num .. "1", min_interval = 60, senderName = "far too long a sender name" })
    assert.are.equal("invalid_request", r.status.error)
    assert.are.equal(1, r.thread_calls)
    r = call(opts{ recipient = num .. "1", min_interval = 60 })
    assert.is_true(r.status.ok, r.status.message)
  end)

  it("counts pins_per_window in the dict and refuses the one over", function()
    for _ = 1, 2 do
      local r = call(opts{ pins_per_window = 2, window = 30 })
      assert.is_true(r.status.ok, r.status.message)
      -- the thread neither counts nor sees the window options
      assert.is_nil(r.thread_pins)
      assert.is_nil(r.thread_window)
    end
    local r = call(opts{ pins_per_window = 2, window = 30 })
    assert.are.equal("cooldown", r.status.error)
    assert.is_true(r.status.retry_after > 0 and r.status.retry_after <= 30)
    assert.are.equal(0, r.thread_calls)
    assert.are.equal(2, sent())
    -- a refusal does not count: still 2 in the window
    for _, k in ipairs(dict_keys()) do
      if k.key:match(":w$") then assert.are.equal(2, k.value) end
    end
  end)

  it("fails closed or open when the dict cannot claim", function()
    local smsend = require "smsend"
    local key = smsend.guard_key(RCPT, { user_key = UK })
    -- a counter that is not a number makes shdict:incr fail
    post("/t/set?key=" .. key .. ":w&value=garbage", {})
    local r = call(opts{ min_interval = 60, pins_per_window = 5 })
    assert.are.equal("guard_unavailable", r.status.error)
    assert.is_true(r.status.retryable)
    assert.matches("not a number", r.status.message, 1, true)
    assert.are.equal(0, r.thread_calls)
    assert.are.equal(0, sent())
    -- the cooldown it had taken went back with the failure
    for _, k in ipairs(dict_keys()) do assert.is_nil(k.key:match(":c$")) end
    r = call(opts{ min_interval = 60, pins_per_window = 5, guard_fail = "open" })
    assert.are.equal(1, r.thread_calls)
    assert.matches('sent without a claim: guard_fail = "open"', r.status.message, 1, true)
    assert.is_true(r.status.ok, r.status.message)
    assert.are.equal(1, sent())
    assert.is_nil(r.thread_guard_fail) -- the dict path has dealt with it
  end)

  it("checks the guard options it reads itself, before claiming", function()
    for _, c in ipairs{
      { { min_interval = -1 }, "min_interval" }, { { min_interval = "60" }, "min_interval" },
      { { pins_per_window = 1.5 }, "pins_per_window" }, { { pins_per_window = 2, window = 0 }, "window" },
      { { min_interval = 60, guard_fail = "maybe" }, "guard_fail" },
    } do
      local r = call(opts(c[1]))
      assert.are.equal("invalid_request", r.status.error)
      assert.are.equal(c[2], r.status.field)
      assert.are.equal(0, r.thread_calls)
    end
    assert.are.equal(0, #dict_keys())
  end)

  it("leaves the claim to the thread with guard = redis://", function()
    local url = "redis://127.0.0.1:1/0"
    local r = call(opts{ min_interval = 60, guard = url })
    assert.are.equal(1, r.thread_calls)
    assert.are.equal(url, r.thread_guard)
    assert.are.equal(60, r.thread_min_interval) -- passed on untouched: the C guard claims
    assert.are.equal(0, #dict_keys())
  end)

  it("answers busy, and gives the claim back, when no thread VM is free", function()
    -- 4 calls hold the 4 thread VMs of one worker for 1 s; the 5th finds none
    local calls = {}
    for i = 1, 4 do
      calls[i] = { opts = opts{ recipient = ("+39347500%04d"):format(i), base_url = sb.url_for("slow-1000") } }
    end
    calls[5] = { opts = opts{ min_interval = 60 } }
    local st = post("/t/many", { calls = calls }).statuses
    for i = 1, 4 do assert.is_true(st[i].ok, st[i].message) end
    assert.are.equal("busy", st[5].error)
    assert.is_true(st[5].retryable)
    assert.matches("lua_worker_thread_vm_pool_size", st[5].message, 1, true)
    -- released: the number can have its PIN now
    local r = call(opts{ min_interval = 60 })
    assert.is_true(r.status.ok, r.status.message)
    assert.are.equal(5, sent())
  end)

  it("answers busy when the thread pool's queue is full", function()
    -- nginx's own answer for a full queue, stubbed: the real one follows on its own nginx
    local r = post("/t/stub?msg=ngx_thread_task_post%20failed", opts{ min_interval = 60 })
    assert.are.equal("busy", r.status.error)
    assert.is_true(r.status.retryable)
    r = call(opts{ min_interval = 60 }) -- released
    assert.is_true(r.status.ok, cjson.encode(r))

    -- pool "tiny": 1 thread, max_queue=1; the 2nd call waits in the queue, the 3rd has no room.
    -- A worker of its own: lua-nginx-module before 0.10.32 (upstream 56b46114) may abort the
    -- worker after ngx_thread_task_post fails (free(): invalid pointer), as Debian 12's 0.10.23 does.
    local one = openresty.start{
      workers = 1,
      thread_pools = { smsend = 1 },
      main = "thread_pool tiny threads=1 max_queue=1;",
      http = "  lua_shared_dict smsend 1m;",
      lua_files = { ["guard_handler.lua"] = HANDLER },
      init = INIT,
      server = LOCATIONS,
    }
    local calls = {}
    for i = 1, 3 do
      calls[i] = { opts = opts{ recipient = ("+39347600%04d"):format(i), base_url = sb.url_for("slow-500") },
                   pool = "tiny" }
    end
    local status, b = openresty.http(one.port, "POST", "/t/many", cjson.encode{ calls = calls })
    helpers.sleep(0.6)
    local log = one:read_error_log()
    one:stop()
    if status == nil and log:find("exited on signal 6", 1, true) then
      pending("this nginx's lua module aborts the worker after a full queue (fixed in 0.10.32, 56b46114)")
      return
    end
    assert.are.equal(200, status, b)
    local ok, busy = 0, 0
    for _, s in ipairs(decode(b).statuses) do
      if s.ok then
        ok = ok + 1
      else
        assert.are.equal("busy", s.error, s.message)
        assert.is_true(s.retryable)
        assert.matches("queue of thread pool 'tiny' is full", s.message, 1, true)
        busy = busy + 1
      end
    end
    assert.is_true(busy >= 1, "no call found the queue full")
    assert.are.equal(3, ok + busy)
  end)

  it("keeps out_of_memory for nginx's 'no memory', and releases the claim", function()
    -- nginx cannot be made to run out of memory for one task on purpose: its answer is stubbed
    local r = post("/t/stub?msg=no%20memory", opts{ min_interval = 60 })
    assert.are.equal("out_of_memory", r.status.error)
    assert.is_true(r.status.retryable)
    r = call(opts{ min_interval = 60 })
    assert.is_true(r.status.ok, cjson.encode(r))
  end)

  it("says when the configured dict is missing", function()
    local r = post("/t/nodict", opts{ min_interval = 60 })
    assert.are.equal("invalid_request", r.status.error)
    assert.are.equal("shared_dict", r.status.field)
    assert.matches("lua_shared_dict nosuch", r.status.message, 1, true)
    assert.are.equal(0, r.thread_calls)
  end)
end)

describe("smsend.resty.configure{ shared_dict }", function()
  local resty = require "smsend.resty"
  it("takes a name or false, and refuses anything else", function()
    local old = resty.configure{ shared_dict = "claims" }
    assert.are.equal("claims", resty.settings().shared_dict)
    assert.are.equal(false, old.shared_dict)
    resty.configure{ shared_dict = false }
    assert.are.equal(false, resty.settings().shared_dict)
    assert.has_error(function() resty.configure{ shared_dict = 1 } end)
    assert.has_error(function() resty.configure{ shared_dict = "" } end)
    assert.has_error(function() resty.configure{ shared_dict = true } end)
    resty.configure(old)
  end)
end)
