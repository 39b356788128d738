-- openresty_spec.lua — smsend inside Debian's nginx + libnginx-mod-http-lua (always the LuaJIT
-- build): require "smsend.resty" through ngx.run_worker_thread against the sandbox gateway, status
-- tables for gateway and bridge failures, a free event loop while PIN calls wait, connection reuse
-- per thread VM, init_by_lua + fork + reload, the phase rules, and examples/openresty end to end.
-- Under either interpreter the spec drives nginx over HTTP; only the "outside nginx" block loads
-- the module (SMSEND_CPATH) into busted itself.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local openresty = require "spec.support.openresty"
local cjson = helpers.cjson

package.path = helpers.repo_root .. "/lua/?.lua;" .. package.path

local UK, TOK = "SBXUSER", "SBXTOKEN"
local RCPT = "+393471234567"

-- The Lua module the test locations call (written into the nginx prefix).
local HANDLER = [==[
local cjson = require "cjson"
local resty = require "smsend.resty"
local M = {}

local function send(t)
  local s = type(t) == "string" and t or cjson.encode(t)
  ngx.header.content_type = "application/json"
  ngx.header.content_length = #s -- keep-alive clients of the spec read Content-Length bodies
  ngx.print(s)
end

local function body_opts()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  return data and cjson.decode(data) or {}
end

local function outcome(st)
  return { status = st, thread_calls = ngx.ctx.thread_calls or 0, worker = ngx.worker.pid() }
end

-- /t/call?op=request_pin|verify_pin[&pool=NAME][&mode=direct], body: the opts as JSON
function M.call()
  local op, opts = ngx.var.arg_op, body_opts()
  local st
  if ngx.var.arg_mode == "direct" then
    st = require("smsend")[op](opts)
  else
    st = resty[op](opts, ngx.var.arg_pool and { pool = ngx.var.arg_pool } or nil)
  end
  send(outcome(st))
end

-- /t/timer?op=..&key=K: the call runs in ngx.timer.at(0); /t/result?key=K has the outcome
function M.timer()
  local op, key, opts = ngx.var.arg_op, ngx.var.arg_key, body_opts()
  local ok, err = ngx.timer.at(0, function()
    ngx.shared.spec:set(key, cjson.encode(outcome(resty[op](opts))))
  end)
  send{ scheduled = ok and true or false, err = err }
end

-- /t/access: the call runs in access_by_lua
function M.access()
  ngx.ctx.outcome = outcome(resty.request_pin(body_opts()))
end
function M.access_result()
  send(ngx.ctx.outcome)
end

-- /t/log?key=K: the call is attempted in log_by_lua
function M.before_log()
  ngx.ctx.opts = body_opts()
  send{ queued = true }
end
function M.log()
  ngx.shared.spec:set(ngx.var.arg_key, cjson.encode(outcome(resty.request_pin(ngx.ctx.opts))))
end

function M.result()
  local v = ngx.shared.spec:get(ngx.var.arg_key)
  if not v then ngx.status = 404 return send{ missing = true } end
  send(v)
end

return M
]==]

local SERVER = [[
    location = /t/call { content_by_lua_block { require("spec_handler").call() } }
    location = /t/timer { content_by_lua_block { require("spec_handler").timer() } }
    location = /t/access {
      access_by_lua_block { require("spec_handler").access() }
      content_by_lua_block { require("spec_handler").access_result() }
    }
    location = /t/log {
      content_by_lua_block { require("spec_handler").before_log() }
      log_by_lua_block { require("spec_handler").log() }
    }
    location = /t/result { content_by_lua_block { require("spec_handler").result() } }
]]

-- init_by_lua (master): count ngx.run_worker_thread calls per request (the proof of which path
-- a call took), and make one direct call, which is what smsend.resty does in the init phase.
local function init_code(base_url)
  return ([[
    local cjson = require "cjson"
    local run = ngx.run_worker_thread
    ngx.run_worker_thread = function(...)
      ngx.ctx.thread_calls = (ngx.ctx.thread_calls or 0) + 1
      return run(...)
    end
    local st = require("smsend.resty").verify_pin{
      recipient = "+393470000001", pin = "000000",
      base_url = %q, user_key = %q, access_token = %q, timeout = 5,
    }
    ngx.shared.spec:set("init", cjson.encode{ status = st, phase = ngx.get_phase() })
  ]]):format(base_url, UK, TOK)
end

local function init_worker_code(base_url)
  return ([[
    local st = require("smsend.resty").request_pin{
      recipient = "+393470000002", base_url = %q, user_key = %q, access_token = %q,
    }
    ngx.shared.spec:set("init_worker", require("cjson").encode{ status = st })
  ]]):format(base_url, UK, TOK)
end

local function decode(body)
  local ok, v = pcall(cjson.decode, body or "")
  assert(ok, "not JSON: " .. tostring(body))
  return v
end

-- Polls the test nginx for the result a timer or log-phase handler stored under key (5 s at most).
local function await_result(ng, key)
  local deadline = helpers.gettime() + 5
  repeat
    helpers.sleep(0.02)
    local s, b = ng:get("/t/result?key=" .. key)
    if s == 200 then return decode(b) end
  until helpers.gettime() > deadline
end

local function gateway_requests(sb, path)
  return sb:requests(path)
end

local function error_log_clean(ng)
  local log = ng:read_error_log()
  assert.is_nil(log:match("%[alert%][^\n]*"), "alert in the error log")
  assert.is_nil(log:match("%[emerg%][^\n]*"), "emerg in the error log")
  assert.is_nil(log:match("[^\n]*exited on signal[^\n]*"), "a worker crashed")
end

describe("smsend in OpenResty", function()
  local sb, ng, single
  local master_connection -- the gateway connection init_by_lua's call used, in the master

  local function opts(extra)
    local t = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  -- POST /t/call on `server` (default ng) → decoded { status =, thread_calls =, worker = }
  local function call(op, o, query, server)
    local status, body = (server or ng):post("/t/call?op=" .. op .. (query or ""), cjson.encode(o))
    assert.are.equal(200, status, body)
    return decode(body)
  end

  setup(function()
    sb = helpers.start_sandbox{ tls = false }
    ng = openresty.start{
      workers = 2,
      thread_pools = { smsend = 4, one = 1 },
      http = "  lua_shared_dict spec 1m;",
      lua_files = { ["spec_handler.lua"] = HANDLER },
      init = init_code(sb.base_url),
      init_worker = init_worker_code(sb.base_url),
      server = SERVER,
    }
    for _, r in ipairs(sb:requests()) do
      if r.path == "2fa/verify" then master_connection = r.connection end
    end
  end)

  teardown(function()
    if single then single:stop() end
    if ng then ng:stop() end
    if sb then helpers.stop_sandbox(sb) end
  end)

  before_each(function()
    sb:reset()
  end)

  describe("through ngx.run_worker_thread", function()
    it("requests a PIN and verifies it", function()
      local r = call("request_pin", opts{ recipient = RCPT, senderName = "MyApp", expiry = 5,
        messageBody = "Code %PIN%" })
      assert.is_true(r.status.ok, r.status.message)
      assert.are.equal(200, r.status.status)
      assert.are.equal(1, r.thread_calls)
      local pin = sb:last_pin(RCPT)
      assert.is_string(pin)
      local sent = gateway_requests(sb, "2fa/request")
      assert.are.equal(1, #sent)
      assert.are.equal(UK, sent[1].headers.user_key)

      local wrong = call("verify_pin", opts{ recipient = RCPT, pin = pin == "000000" and "111111" or "000000" })
      assert.is_false(wrong.status.ok)
      assert.are.equal("wrong_pin", wrong.status.error)
      assert.are.equal(2, wrong.status.tries_remaining)
      assert.are.equal(1, wrong.thread_calls)

      local v = call("verify_pin", opts{ recipient = RCPT, pin = pin })
      assert.is_true(v.status.ok, v.status.message)
      assert.are.equal(1, v.thread_calls)
    end)

    it("returns gateway errors as status tables", function()
      local cases = {
        { opts{ base_url = sb.url_for("status-503") }, "server_error", 503, false },
        { opts{ base_url = sb.url_for("retry-after-7") }, "rate_limited", 429, true },
        { opts{ access_token = "WRONG" }, "unauthorized", 401, false },
        { opts{ user_key = "NOBODY" }, "not_found", 404, false },
        { opts{ base_url = sb.url_for("garbage") }, "bad_response", nil, false },
        { opts{ base_url = "http://127.0.0.1:1/API/v1.0/REST/" }, "connect_failed", nil, true },
      }
      for _, c in ipairs(cases) do
        local o = c[1]
        o.recipient = RCPT
        local r = call("request_pin", o)
        local st = r.status
        assert.are.equal(1, r.thread_calls)
        assert.is_false(st.ok)
        assert.are.equal(c[2], st.error, st.message)
        assert.are.equal(c[3], st.status)
        assert.are.equal(c[4], st.retryable)
        assert.is_string(st.message)
        assert.is_number(st.elapsed)
        if c[2] == "rate_limited" then assert.are.equal(7, st.retry_after) end
      end
      -- a timeout holds the thread for `timeout`, no longer
      local r = call("request_pin", opts{ recipient = RCPT, base_url = sb.url_for("slow-2000"), timeout = 0.5 })
      assert.are.equal("timeout", r.status.error)
      assert.is_false(r.status.retryable)
      assert.is_true(r.status.elapsed >= 0.45 and r.status.elapsed < 1.5, tostring(r.status.elapsed))
      -- the module's own checks run in the thread too
      local bad = call("request_pin", opts{ recipient = "12345" })
      assert.are.equal("invalid_request", bad.status.error)
      assert.are.equal("recipient", bad.status.field)
      local unknown = call("verify_pin", opts{ recipient = RCPT, pin = "1", colour = "red" })
      assert.are.equal("invalid_request", unknown.status.error)
      assert.are.equal("colour", unknown.status.field)
    end)

    it("answers with a status table when nginx has no such thread pool", function()
      local t0 = helpers.gettime()
      local r = call("request_pin", opts{ recipient = RCPT }, "&pool=nosuch")
      assert.is_true(helpers.gettime() - t0 < 1)
      local st = r.status
      assert.is_false(st.ok)
      assert.are.equal("invalid_request", st.error)
      assert.are.equal("pool", st.field)
      assert.is_false(st.retryable)
      assert.are.equal("nginx has no thread pool 'nosuch' "
        .. "(add to the main context of nginx.conf: thread_pool nosuch threads=16;)", st.message)
      assert.is_number(st.elapsed)
      assert.are.equal(0, #gateway_requests(sb))
    end)

    it("refuses values that cannot cross into the thread, naming the field", function()
      -- JSON null arrives as cjson.null (a light userdata), an object as a table
      local st = call("request_pin", { recipient = cjson.null, base_url = sb.base_url }).status
      assert.are.equal("invalid_request", st.error)
      assert.are.equal("recipient", st.field)
      st = call("request_pin", opts{ recipient = { RCPT } }).status
      assert.are.equal("invalid_request", st.error)
      assert.are.equal("recipient", st.field)
      assert.are.equal(0, #gateway_requests(sb))
    end)

    it("reuses one gateway connection for calls in a row through a 1-thread pool", function()
      -- one keep-alive connection to nginx keeps every call in the same worker process
      local reqs = {}
      local body = cjson.encode(opts{ recipient = RCPT, user_agent = "spec-reuse" })
      for i = 1, 5 do
        reqs[i] = ("POST /t/call?op=request_pin&pool=one HTTP/1.1\r\nHost: x\r\n"
          .. "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body)
      end
      local answers = helpers.raw_keepalive(ng.port, reqs, 10)
      local worker
      for _, a in ipairs(answers) do
        assert.are.equal(200, a.status)
        local r = decode(a.body)
        assert.is_true(r.status.ok, r.status.message)
        assert.are.equal(1, r.thread_calls)
        worker = worker or r.worker
        assert.are.equal(worker, r.worker)
      end
      local sent = gateway_requests(sb, "2fa/request")
      assert.are.equal(5, #sent)
      for i = 2, 5 do
        assert.are.equal(sent[1].connection, sent[i].connection)
        assert.are.equal(sent[i - 1].connection_requests + 1, sent[i].connection_requests)
      end
    end)

    it("runs many calls at once in many thread VMs", function()
      -- 24 calls on 2 workers x 4 threads, each held 100 ms at the gateway so they overlap
      local socks = {}
      for i = 1, 24 do
        local o = opts{ recipient = ("+39347100%04d"):format(i), base_url = sb.url_for("slow-100") }
        socks[i] = openresty.fire(ng.port, "POST", "/t/call?op=request_pin", cjson.encode(o))
      end
      local workers = {}
      for i, s in ipairs(socks) do
        local status, body = openresty.collect(s)
        assert.are.equal(200, status, body)
        local r = decode(body)
        assert.is_true(r.status.ok, ("call %d: %s"):format(i, tostring(r.status.message)))
        assert.are.equal(1, r.thread_calls)
        workers[r.worker] = true
      end
      local sent = gateway_requests(sb, "2fa/request")
      assert.are.equal(24, #sent)
      local seen = {}
      for _, q in ipairs(sent) do
        local rcpt = decode(q.body).recipient
        assert.is_nil(seen[rcpt])
        seen[rcpt] = true
      end
      -- then verify each PIN, again all at once
      for i = 1, 24 do
        local rcpt = ("+39347100%04d"):format(i)
        socks[i] = openresty.fire(ng.port, "POST", "/t/call?op=verify_pin",
          cjson.encode(opts{ recipient = rcpt, pin = sb:last_pin(rcpt) }))
      end
      for _, s in ipairs(socks) do
        local status, body = openresty.collect(s)
        assert.are.equal(200, status)
        assert.is_true(decode(body).status.ok)
      end
      error_log_clean(ng)
    end)
  end)

  describe("phases", function()
    it("calls the module directly in init_by_lua (the master, before fork)", function()
      local status, body = ng:get("/t/result?key=init")
      assert.are.equal(200, status)
      local r = decode(body)
      assert.are.equal("init", r.phase)
      -- no PIN pending for that number: the gateway's answer, so the call went out
      assert.are.equal("wrong_pin", r.status.error, r.status.message)
      assert.are.equal(200, r.status.status)
    end)

    it("a worker renews the connection its module cache inherited from the master", function()
      -- same configuration as the call in init_by_lua: the cached client came through fork()
      local r = call("verify_pin", opts{ recipient = "+393470000001", pin = "000000" }, "&mode=direct")
      assert.are.equal(0, r.thread_calls)
      assert.are.equal("wrong_pin", r.status.error, r.status.message)
      -- the master's connection stays open in the master; the worker must not write to it
      local sent = gateway_requests(sb, "2fa/verify")
      assert.are.equal(1, #sent)
      assert.is_number(master_connection)
      assert.are_not.equal(master_connection, sent[1].connection)
    end)

    it("waits in a timer and in access_by_lua through the thread pool", function()
      local key = "timer" .. tostring(math.random(1e9))
      local status, body = ng:post("/t/timer?op=request_pin&key=" .. key, cjson.encode(opts{ recipient = RCPT }))
      assert.are.equal(200, status, body)
      local r = await_result(ng, key)
      assert.is_table(r)
      assert.is_true(r.status.ok, r.status.message)
      assert.are.equal(1, r.thread_calls)

      status, body = ng:post("/t/access", cjson.encode(opts{ recipient = RCPT }))
      assert.are.equal(200, status, body)
      r = decode(body)
      assert.is_true(r.status.ok, r.status.message)
      assert.are.equal(1, r.thread_calls)
      assert.are.equal(2, #gateway_requests(sb, "2fa/request"))
    end)

    it("refuses with a status table where nginx cannot wait (log, init_worker)", function()
      local key = "log" .. tostring(math.random(1e9))
      local status = ng:post("/t/log?key=" .. key, cjson.encode(opts{ recipient = RCPT }))
      assert.are.equal(200, status)
      local r = await_result(ng, key)
      assert.is_table(r)
      assert.are.equal(0, r.thread_calls)
      assert.is_false(r.status.ok)
      assert.are.equal("invalid_request", r.status.error)
      assert.is_false(r.status.retryable)
      assert.matches("in the log phase", r.status.message, 1, true)

      local s, b = ng:get("/t/result?key=init_worker")
      assert.are.equal(200, s)
      local w = decode(b).status
      assert.are.equal("invalid_request", w.error)
      assert.matches("in the init_worker phase", w.message, 1, true)
      assert.are.equal(0, #gateway_requests(sb))
    end)
  end)

  describe("the event loop", function()
    setup(function()
      single = openresty.start{
        workers = 1,
        thread_pools = { smsend = 4 },
        lua_files = { ["spec_handler.lua"] = HANDLER },
        -- as many thread VMs as threads: a fifth call in flight finds none
        http = "  lua_shared_dict spec 1m;\n  lua_worker_thread_vm_pool_size 4;",
        server = SERVER,
      }
    end)

    teardown(function()
      if single then single:stop() end
      single = nil
    end)

    it("answers /ping within milliseconds while PIN calls wait 3 s on the gateway", function()
      local t0 = helpers.gettime()
      local socks = {}
      for i = 1, 4 do
        local o = opts{ recipient = ("+39347200%04d"):format(i), base_url = sb.url_for("slow-3000") }
        socks[i] = openresty.fire(single.port, "POST", "/t/call?op=request_pin", cjson.encode(o))
      end
      -- all four are at the gateway, i.e. in the worker threads
      local deadline = helpers.gettime() + 2.5
      while #gateway_requests(sb, "2fa/request") < 4 and helpers.gettime() < deadline do
        helpers.sleep(0.02)
      end
      assert.are.equal(4, #gateway_requests(sb, "2fa/request"))
      local worst = 0
      for _ = 1, 5 do
        local status, body, _, took = single:get("/ping", 2)
        assert.are.equal(200, status)
        assert.are.equal("pong\n", body)
        worst = math.max(worst, took)
      end
      -- a fifth call finds every thread VM busy: a status table at once, nothing sent
      local t5 = helpers.gettime()
      local st5, body5 = single:post("/t/call?op=request_pin", cjson.encode(opts{ recipient = RCPT }))
      assert.are.equal(200, st5)
      local fifth = decode(body5).status
      assert.is_true(helpers.gettime() - t5 < 0.5)
      assert.are.equal("busy", fifth.error)
      assert.is_true(fifth.retryable)
      assert.matches("lua_worker_thread_vm_pool_size", fifth.message, 1, true)
      assert.are.equal(4, #gateway_requests(sb, "2fa/request"))
      assert.is_true(helpers.gettime() - t0 < 2.8, "the pings came too late to prove anything")
      assert.is_true(worst < 0.2, ("/ping took %.3f s"):format(worst))
      for i, s in ipairs(socks) do
        local status, body = openresty.collect(s)
        assert.are.equal(200, status)
        local r = decode(body)
        assert.is_true(r.status.ok, ("call %d: %s"):format(i, tostring(r.status.message)))
        assert.is_true(r.status.elapsed >= 2.9)
      end
      -- 4 threads: the four waits overlapped
      assert.is_true(helpers.gettime() - t0 < 5.5)
      error_log_clean(single)
    end)
  end)

  describe("reload", function()
    it("still requests and verifies PINs after nginx -s reload", function()
      local before = ng:worker_pids()
      assert.are.equal(2, #before)
      ng:reload()
      local after = ng:worker_pids()
      assert.are.equal(2, #after)
      for _, p in ipairs(after) do
        for _, q in ipairs(before) do assert.are_not.equal(p, q) end
      end
      for round = 1, 2 do
        local rcpt = "+39347300000" .. round
        local r = call("request_pin", opts{ recipient = rcpt })
        assert.is_true(r.status.ok, r.status.message)
        assert.are.equal(1, r.thread_calls)
        local v = call("verify_pin", opts{ recipient = rcpt, pin = sb:last_pin(rcpt) })
        assert.is_true(v.status.ok, v.status.message)
      end
      -- init_by_lua ran again in the master
      local _, body = ng:get("/t/result?key=init")
      assert.are.equal("wrong_pin", decode(body).status.error)
      error_log_clean(ng)
    end)
  end)

  describe("examples/openresty", function()
    local ex

    setup(function()
      local example_dir = helpers.repo_root .. "/examples/openresty"
      local text = assert(helpers.read_file(example_dir .. "/nginx.conf"))
      ex = openresty.start{
        -- only the port and the paths out of the prefix change
        conf = function(port)
          local t, n = text:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
          assert(n == 1)
          t = t:gsub("%$prefix/%.%./%.%./", (helpers.repo_root:gsub("%%", "%%%%")) .. "/")
          t = t:gsub("%$prefix/", (example_dir:gsub("%%", "%%%%")) .. "/")
          return t
        end,
        env = { SMSEND_BASE_URL = sb.base_url, SMSEND_USER_KEY = UK, SMSEND_ACCESS_TOKEN = TOK },
        workers = 2,
      }
    end)

    teardown(function()
      if ex then ex:stop() end
    end)

    local function form(path, body)
      local c = assert(require("socket").tcp())
      c:settimeout(10)
      assert(c:connect("127.0.0.1", ex.port))
      assert(c:send(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        .. "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"):format(path, #body, body)))
      local data = c:receive("*a")
      c:close()
      local status = tonumber(data:match("^HTTP/1%.%d (%d+)"))
      local head, rest = data:match("^(.-)\r\n\r\n(.*)$")
      -- chunked (ngx.say): one chunk and the terminator
      if head:lower():find("transfer%-encoding: chunked") then
        rest = rest:match("^%x+\r\n(.-)\r\n0\r\n")
      end
      return status, decode(rest), head
    end

    it("logs alice in with a PIN by SMS", function()
      local status, r = form("/login", "username=alice&password=wrong")
      assert.are.equal(401, status)
      status, r = form("/login", "username=alice&password=wonderland")
      assert.are.equal(200, status)
      assert.matches("^%x+$", r.login_id)
      local pin = assert(sb:last_pin(RCPT))
      local bad = pin == "000000" and "111111" or "000000"
      status, r = form("/login/verify", "login_id=" .. r.login_id .. "&pin=" .. bad)
      assert.are.equal(401, status)
      assert.are.equal(2, r.tries_remaining)
      local _, again = form("/login", "username=alice&password=wonderland")
      pin = sb:last_pin(RCPT)
      local head
      status, r, head = form("/login/verify", "login_id=" .. again.login_id .. "&pin=" .. pin)
      assert.are.equal(200, status)
      assert.are.equal("alice", r.user)
      assert.matches("Set%-Cookie: session=" .. r.session, head)
      local sent = gateway_requests(sb, "2fa/request")
      assert.are.equal(2, #sent)
      assert.are.equal("MyApp", decode(sent[1].body).senderName)
      local ps = ex:get("/ping")
      assert.are.equal(200, ps)
      error_log_clean(ex)
    end)
  end)
end)

describe("smsend.resty outside nginx", function()
  local sb
  local resty = require "smsend.resty"
  local smsend = require "smsend"

  setup(function() sb = helpers.start_sandbox{ tls = false } end)
  teardown(function() if sb then helpers.stop_sandbox(sb) end end)

  it("calls the module directly and returns its status table", function()
    local o = { recipient = RCPT, user_key = UK, access_token = TOK, base_url = sb.base_url }
    local st = resty.request_pin(o)
    assert.is_true(st.ok, st.message)
    assert.are.equal(200, st.status)
    local pin = sb:last_pin(RCPT)
    local v = resty.verify_pin{ recipient = RCPT, pin = pin, user_key = UK, access_token = TOK,
      base_url = sb.base_url }
    assert.is_true(v.ok, v.message)
    -- the same function the module has
    local d = smsend.request_pin{ recipient = "12", base_url = sb.base_url }
    local r = resty.request_pin{ recipient = "12", base_url = sb.base_url }
    assert.are.same(d.error, r.error)
    assert.are.same(d.field, r.field)
  end)

  it("raises on misuse like the module", function()
    assert.has_error(function() resty.request_pin("x") end)
    assert.has_error(function() resty.verify_pin(nil) end)
    assert.has_error(function() resty.request_pin({}, "pool") end)
    assert.has_error(function() resty.configure{ pool = 1 } end)
    assert.has_error(function() resty.configure{ colour = "red" } end)
  end)

  it("keeps the pool name", function()
    assert.are.equal("smsend", resty.settings().pool)
    local old = resty.configure{ pool = "sms" }
    assert.are.equal("smsend", old.pool)
    assert.are.equal("sms", resty.settings().pool)
    resty.configure(old)
    assert.are.equal("smsend", resty.settings().pool)
  end)
end)
