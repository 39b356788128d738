-- deploy_nginx_spec.lua — the promises of smsend.resty for a deployment, not for one Lua state,
-- against real nginx instances (Debian's nginx + lua module, the LuaJIT build) and the sandbox
-- gateway, counted on the gateway's side:
--   - 2 nginx x 2 workers sharing one redis-server: 50 concurrent requests for one number reach
--     the gateway once (and, for contrast, once per nginx when each claims in its own dict);
--   - one worker, 8 threads, username/password: a burst of 100 calls makes 1 login, and 1 re-login
--     after the gateway expires the session;
--   - one worker, 16 threads: 200 concurrent calls open at most 16 gateway connections.
-- Every thread call is wrapped (deploy_vm.lua) to say which worker-thread VM ran it, so the specs
-- also show the calls were spread over many VMs.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local openresty = require "spec.support.openresty"
local deploy = require "spec.support.deploy"
local cjson = helpers.cjson

package.path = helpers.repo_root .. "/lua/?.lua;" .. package.path
local smsend = require "smsend"

local U = helpers.DEFAULT_USER

-- The handlers (written into each nginx prefix).
local HANDLER = [==[
local resty = require "smsend.resty"
local nx = require "spec_nginx"
local M = {}

-- POST /d/call, body: opts → { status =, worker = }
function M.call()
  nx.reply{ status = resty.request_pin(nx.body()), worker = ngx.worker.pid() }
end

-- POST /d/burst?pool=.., body: { n =, opts =, prefix = }: n calls at once in light threads of
-- this worker, to prefix .. "%04d" (1..n) → { ok =, errors =, vms = distinct thread VMs, worker = }
function M.burst()
  local b = nx.body()
  local how = ngx.var.arg_pool and { pool = ngx.var.arg_pool } or nil
  local threads = {}
  for i = 1, b.n do
    local o = {}
    for k, v in pairs(b.opts) do o[k] = v end
    o.recipient = ("%s%04d"):format(b.prefix, i)
    threads[i] = ngx.thread.spawn(resty.request_pin, o, how)
  end
  local ok, errors, vms, n_vms = 0, {}, {}, 0
  for _, t in ipairs(threads) do
    local fine, st = ngx.thread.wait(t)
    if fine and st.ok then
      ok = ok + 1
    else
      errors[#errors + 1] = fine and (tostring(st.error) .. ": " .. tostring(st.message)) or tostring(st)
    end
    if fine and st.vm and not vms[st.vm] then
      vms[st.vm] = true
      n_vms = n_vms + 1
    end
  end
  nx.reply{ ok = ok, errors = errors, vms = n_vms, worker = ngx.worker.pid() }
end

-- GET /d/keys: the keys of the claims dict
function M.keys()
  nx.reply{ keys = ngx.shared.smsend:get_keys(0) }
end

function M.flush()
  ngx.shared.smsend:flush_all()
  nx.reply{ ok = true }
end

return M
]==]

-- Runs in the worker-thread VMs in place of smsend: the same call, and the VM that made it.
local VM_MODULE = [==[
local smsend = require "smsend"
local me = {} -- lives as long as this VM: its address names the VM
local VM = tostring(me)
local M = {}
function M.request_pin(opts)
  local st = smsend.request_pin(opts)
  st.vm = VM
  return st
end
function M.verify_pin(opts)
  local st = smsend.verify_pin(opts)
  st.vm = VM
  return st
end
return M
]==]

local INIT = [[
    local run = ngx.run_worker_thread
    ngx.run_worker_thread = function(pool, mod, fn, ...)
      if mod == "smsend" then mod = "deploy_vm" end
      return run(pool, mod, fn, ...)
    end
    require("smsend.resty").configure{ shared_dict = "smsend" }
]]

local LOCATIONS = [[
      location = /d/call { content_by_lua_block { require("deploy_handler").call() } }
      location = /d/burst { content_by_lua_block { require("deploy_handler").burst() } }
      location = /d/keys { content_by_lua_block { require("deploy_handler").keys() } }
      location = /d/flush { content_by_lua_block { require("deploy_handler").flush() } }
]]

local LUA_FILES = { ["deploy_handler.lua"] = HANDLER, ["deploy_vm.lua"] = VM_MODULE }

local function decode(b)
  local ok, v = pcall(cjson.decode, b or "")
  assert(ok, "not JSON: " .. tostring(b))
  return v
end

local function post(port, path, t, timeout)
  local status, b = openresty.http(port, "POST", path, cjson.encode(t), timeout)
  assert.are.equal(200, status, b)
  return decode(b)
end

-- An nginx whose second server (on `port`, reuseport) the kernel spreads over its workers.
local function start_nginx(workers, port, pools, vm_pool)
  return openresty.start{
    workers = workers,
    thread_pools = pools,
    http = table.concat({
      "  lua_shared_dict smsend 1m;",
      ("  lua_worker_thread_vm_pool_size %d;"):format(vm_pool),
      ("  server {\n    listen 127.0.0.1:%d reuseport;\n%s  }"):format(port, LOCATIONS),
    }, "\n"),
    lua_files = LUA_FILES,
    init = INIT,
  }
end

describe("2 nginx instances x 2 workers", function()
  local parts, sb, store, ngs, ports = deploy.parts{ redis_db = 0 }, nil, nil, {}, {}

  setup(function()
    for i = 1, 2 do
      ports[i] = helpers.sandbox.free_port()
      ngs[i] = start_nginx(2, ports[i], { smsend = 8 }, 64)
    end
  end)

  teardown(function()
    for _, ng in ipairs(ngs) do ng:stop() end
  end)

  before_each(function()
    sb, store = parts.sb, parts.store
    sb:reset()
    store:cli("FLUSHDB")
    for i = 1, 2 do post(ports[i], "/d/flush", {}) end
  end)

  -- 50 requests at once for rcpt, alternately to both nginx → ok, cooldown, distinct workers
  local function burst(rcpt, extra)
    -- the one that goes out is held 300 ms at the gateway, so the others arrive while it is in flight
    local body = cjson.encode(deploy.merge({ user_key = U.user_key, access_token = U.access_token,
      base_url = sb.url_for("slow-300"), timeout = 5, recipient = rcpt, min_interval = 60 }, extra))
    local socks = {}
    for i = 1, 50 do socks[i] = { i % 2 + 1, openresty.fire(ports[i % 2 + 1], "POST", "/d/call", body) } end
    local ok, cooldown, workers, n_workers = 0, 0, {}, 0
    for _, s in ipairs(socks) do
      local status, b = openresty.collect(s[2])
      assert.are.equal(200, status, b)
      local r = decode(b)
      local w = s[1] .. ":" .. r.worker
      if not workers[w] then workers[w], n_workers = true, n_workers + 1 end
      if r.status.ok then
        ok = ok + 1
      else
        assert.are.equal("cooldown", r.status.error, r.status.message)
        assert.is_false(r.status.retryable)
        assert.is_true(r.status.retry_after >= 59 and r.status.retry_after <= 60, tostring(r.status.retry_after))
        cooldown = cooldown + 1
      end
    end
    return ok, cooldown, n_workers
  end

  it("let 50 concurrent requests for one number reach the gateway once when they share a Redis", function()
    local rcpt = "+393478700001"
    local ok, cooldown, n_workers = burst(rcpt, { guard = store.url })
    assert.are.equal(4, n_workers, "the burst did not reach all 4 workers")
    assert.are.equal(1, ok)
    assert.are.equal(49, cooldown)
    assert.are.equal(1, deploy.sent(sb)) -- counted on the gateway's side
    -- the one claim is in Redis, expiring, named by a hash: no run of 4 digits of the number
    local keys = store:scan("*")
    assert.are.same({ smsend.guard_key(rcpt, { user_key = U.user_key }) .. ":c" }, keys)
    assert.matches("^smsend:v1:%x+:c$", keys[1])
    assert.is_nil(deploy.digit_run(keys[1], rcpt, 4), keys[1])
    local pttl = tonumber(store:cli("PTTL", keys[1])[1])
    assert.is_true(pttl > 55000 and pttl <= 60000, tostring(pttl))
    -- the dicts were not used
    for i = 1, 2 do
      local status, b = openresty.http(ports[i], "GET", "/d/keys")
      assert.are.equal(200, status)
      assert.are.same({}, decode(b).keys)
    end
  end)

  it("send once per nginx when each claims in its own lua_shared_dict (the dict is per nginx)", function()
    -- the contrast: what a per-node store gives behind a load balancer
    local rcpt = "+393478700002"
    local ok, cooldown, n_workers = burst(rcpt, { pins_per_window = 5, window = 300 })
    assert.are.equal(4, n_workers, "the burst did not reach all 4 workers")
    assert.are.equal(2, ok)
    assert.are.equal(48, cooldown)
    assert.are.equal(2, deploy.sent(sb))
    assert.are.same({}, store:scan("*"))
    -- each dict holds the cooldown and the window count, named without 4 digits of the number
    for i = 1, 2 do
      local status, b = openresty.http(ports[i], "GET", "/d/keys")
      assert.are.equal(200, status)
      local keys = decode(b).keys
      table.sort(keys)
      local key = smsend.guard_key(rcpt, { user_key = U.user_key })
      assert.are.same({ key .. ":c", key .. ":w" }, keys)
      for _, k in ipairs(keys) do
        assert.matches("^smsend:v1:%x+:[cw]$", k)
        assert.is_nil(deploy.digit_run(k, rcpt, 4), k)
      end
    end
  end)
end)

describe("one nginx worker", function()
  local parts, sb, ng, port = deploy.parts(), nil, nil, nil

  setup(function()
    port = helpers.sandbox.free_port()
    ng = start_nginx(1, port, { smsend = 8, wide = 16 }, 256)
  end)

  teardown(function()
    if ng then ng:stop() end
  end)

  before_each(function() sb = parts.sb end)

  local function burst(pool, n, prefix, o)
    local r = post(port, "/d/burst?pool=" .. pool, { n = n, prefix = prefix, opts = o }, 60)
    assert.are.same({}, r.errors)
    assert.are.equal(n, r.ok)
    return r
  end

  it("makes 1 login for 100 concurrent username/password calls over 8 threads, and 1 re-login", function()
    sb:reset()
    local o = { username = U.username, password = U.password, base_url = sb.base_url, timeout = 10 }
    local r = burst("smsend", 100, "+39347871", o)
    assert.is_true(r.vms > 8, "the calls ran in " .. r.vms .. " thread VMs only")
    assert.are.equal(1, deploy.sent(sb, "login"))
    assert.are.equal(100, deploy.sent(sb))
    -- the gateway forgets the session: the calls in flight get 401, one renews, all use it
    sb:expire_sessions()
    r = burst("smsend", 100, "+39347872", o)
    assert.is_true(r.vms > 8, "the calls ran in " .. r.vms .. " thread VMs only")
    assert.are.equal(2, deploy.sent(sb, "login"))
    local wasted = deploy.sent(sb) - 200 -- requests answered 401 and made again
    assert.is_true(wasted >= 1 and wasted <= 8, wasted .. " requests were answered 401")
  end)

  it("opens at most 16 gateway connections for 200 concurrent calls through 16 threads", function()
    sb:reset()
    local o = { user_key = U.user_key, access_token = U.access_token, base_url = sb.base_url, timeout = 10 }
    local r = burst("wide", 200, "+39347873", o)
    assert.is_true(r.vms > 16, "the calls ran in " .. r.vms .. " thread VMs only")
    assert.are.equal(200, deploy.sent(sb))
    local conns = deploy.connections(sb)
    assert.is_true(conns >= 1 and conns <= 16, conns .. " connections")
  end)
end)
