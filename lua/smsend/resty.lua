-- smsend.resty — owns the way from OpenResty handlers to the blocking smsend calls: an nginx thread
-- pool (ngx.run_worker_thread) inside nginx, a direct call elsewhere, and status tables for bridge failures.
--
--   local resty = require "smsend.resty"
--   local st = resty.request_pin{ recipient = "+393471234567", user_key = ..., access_token = ... }
--   local st = resty.verify_pin{ recipient = "+393471234567", pin = typed, user_key = ..., ... }
--
-- nginx.conf needs `thread_pool smsend threads=N;` in its main context (the pool name is set with
-- resty.configure{ pool = "name" } or per call: resty.request_pin(opts, { pool = "name" })).
-- Where a call runs:
--   outside nginx, and inside an nginx worker-thread VM    -> require("smsend") directly
--   nginx phase "init" (init_by_lua, in the master)        -> directly: nothing is being served yet
--   rewrite, server_rewrite, access, content, timer,
--   ssl_cert, ssl_session_fetch, ssl_client_hello          -> ngx.run_worker_thread(pool, "smsend", ...)
--   any other phase (init_worker, set, header_filter,
--   body_filter, log, balancer, exit_worker, ...)          -> no call: an invalid_request status table,
--                                                             because nginx cannot wait there and a
--                                                             direct call would freeze the worker
-- Failures of the bridge itself come back as status tables too:
--   no such thread pool, no ngx.run_worker_thread, wrong phase, a value that cannot cross into the
--   thread, the thread VM cannot load smsend      -> error "invalid_request", retryable = false:
--                                                    nothing was sent, but repeating the call in the
--                                                    same nginx cannot succeed (a deployment or
--                                                    programming error, like a bad option); `field`
--                                                    is "pool" for a missing pool
--   no free thread VM (lua_worker_thread_vm_pool_size), the pool's queue is full (max_queue), no
--   memory for the task                           -> error "out_of_memory", retryable = true:
--                                                    nothing was sent, and load may go down
--   a Lua error inside the thread (after the checks here, so most likely memory)
--                                                 -> error "out_of_memory", retryable = false: the
--                                                    request may have reached the gateway
-- `elapsed` of a call that ran is the time in the thread, without the wait in the pool's queue.
-- Like require("smsend"), misuse raises: opts that is not a table, a pool name that is not a string.

local M = {}

local DEFAULT_POOL = "smsend"
local pool = DEFAULT_POOL

-- ngx.get_phase() values where ngx.run_worker_thread may yield (lua-nginx-module's
-- NGX_HTTP_LUA_CONTEXT_YIELDABLE); everything else is refused rather than blocked.
local YIELDABLE = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- What a key or value of opts may be. ngx.run_worker_thread copies these into the thread's VM and
-- fails on functions, userdata, coroutines and cdata; it would also copy a nested table (without its
-- metatable, and a cycle without end), but smsend accepts none, so one is refused here already.
local CROSSES = { string = true, number = true, boolean = true }

local smsend -- loaded on the first direct call: inside nginx the worker VM never needs it

local function direct(op, opts)
  smsend = smsend or require "smsend"
  return smsend[op](opts)
end

local function now()
  -- only used inside nginx; ngx.now() is cached per event-loop turn, so refresh it first
  ngx.update_time()
  return ngx.now()
end

local function failure(code, message, retryable, started, field)
  return {
    ok = false,
    error = code,
    message = message,
    retryable = retryable,
    field = field,
    elapsed = started and math.max(0, now() - started) or 0,
  }
end

-- Maps the `false, message` of ngx.run_worker_thread (lua-nginx-module 0.10.23 wording; later
-- versions are matched loosely) to a status table.
local function bridge_failure(msg, pool_name, started, raised)
  msg = tostring(msg)
  if msg:find("thread pool", 1, true) and msg:find("not found", 1, true)
      or msg:find("thread_pool not found", 1, true) then
    return failure("invalid_request",
      ("nginx has no thread pool '%s' (add to the main context of nginx.conf: thread_pool %s threads=16;)")
        :format(pool_name, pool_name), false, started, "pool")
  end
  if msg:find("no available Lua vm", 1, true) then
    return failure("out_of_memory",
      "every worker-thread Lua VM of this nginx worker is busy (raise lua_worker_thread_vm_pool_size): "
        .. msg, true, started)
  end
  if msg:find("task_post", 1, true) then
    return failure("out_of_memory",
      ("the queue of thread pool '%s' is full (raise max_queue= of its thread_pool line): %s")
        :format(pool_name, msg), true, started)
  end
  if msg == "no memory" then
    return failure("out_of_memory", "nginx is out of memory for a worker-thread task", true, started)
  end
  if msg:find("module 'smsend'", 1, true) or msg:find("smsend: libcurl", 1, true)
      or msg:find("invalid lua module", 1, true) or msg:find("invalid function", 1, true)
      or msg:find("loop or previous error", 1, true) then
    return failure("invalid_request",
      "the worker thread could not load smsend (is it on lua_package_cpath?): " .. msg, false, started)
  end
  if msg:find("unsupported", 1, true) or msg:find("argument", 1, true) then
    return failure("invalid_request", "the request cannot be passed to a worker thread: " .. msg,
      false, started)
  end
  if raised then
    return failure("invalid_request", "ngx.run_worker_thread refused the call: " .. msg, false, started)
  end
  return failure("out_of_memory",
    "the worker thread failed; the request may have reached the gateway: " .. msg, false, started)
end

local function call(op, opts, how)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (table expected, got %s)"):format(op, type(opts)), 3)
  end
  local pool_name = pool
  if how ~= nil then
    if type(how) ~= "table" then
      error(("bad argument #2 to '%s' (table or nil expected, got %s)"):format(op, type(how)), 3)
    end
    if how.pool ~= nil then
      if type(how.pool) ~= "string" then
        error(("bad argument #2 to '%s' (pool must be a string)"):format(op), 3)
      end
      pool_name = how.pool
    end
  end

  -- Not in nginx, or in a worker-thread VM: that one has a partial `ngx` (no ngx.req, no
  -- run_worker_thread, get_phase() says "init"), and blocking there is the point of the thread.
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function" or type(ngx.req) ~= "table" then
    return direct(op, opts)
  end
  local phase = ngx.get_phase()
  if phase == "init" then
    return direct(op, opts)
  end
  local run = ngx.run_worker_thread

  local started = now()
  if not YIELDABLE[phase] then
    return failure("invalid_request",
      ("smsend.resty: nginx cannot wait for a worker thread in the %s phase, and a direct call would "
        .. "freeze this worker; call it from a rewrite/access/content handler or ngx.timer.at(0, ...)")
        :format(phase), false, started)
  end
  if run == nil then
    return failure("invalid_request",
      "smsend.resty: this nginx has no ngx.run_worker_thread (needs lua-nginx-module >= 0.10.22 "
        .. "and nginx built with thread support)", false, started)
  end
  -- Name the offending field ourselves: nginx's own message does not say which one it was.
  for k, v in pairs(opts) do
    if not CROSSES[type(v)] or not CROSSES[type(k)] then
      local name = type(k) == "string" and k or ("(" .. type(k) .. " key)")
      return failure("invalid_request",
        ("%s must be a string, number or boolean to reach a worker thread, got %s")
          :format(name, type(v)), false, started, name)
    end
  end

  -- ngx.run_worker_thread raises only before it posts the task (e.g. a phase it refuses), and
  -- returns false, message for everything else.
  local okcall, ok, status = pcall(run, pool_name, "smsend", op, opts)
  if not okcall then
    return bridge_failure(ok, pool_name, started, true)
  end
  if not ok then
    return bridge_failure(status, pool_name, started)
  end
  if type(status) ~= "table" then
    return failure("out_of_memory", "the worker thread returned no status table", false, started)
  end
  return status
end

--- Sends a PIN; opts are those of require("smsend").request_pin (request fields and options).
function M.request_pin(opts, how)
  return call("request_pin", opts, how)
end

--- Checks a PIN; opts are those of require("smsend").verify_pin.
function M.verify_pin(opts, how)
  return call("verify_pin", opts, how)
end

--- resty.configure{ pool = "name" }: the default thread pool of this Lua VM (set it in init_by_lua
--- and every worker inherits it). Returns the previous settings.
function M.configure(settings)
  if type(settings) ~= "table" then
    error("bad argument #1 to 'configure' (table expected, got " .. type(settings) .. ")", 2)
  end
  local old = { pool = pool }
  for k, v in pairs(settings) do
    if k ~= "pool" then error("smsend.resty.configure: unknown setting '" .. tostring(k) .. "'", 2) end
    if type(v) ~= "string" or v == "" then
      error("smsend.resty.configure: pool must be a non-empty string", 2)
    end
  end
  if settings.pool then pool = settings.pool end
  return old
end

--- The current settings ({ pool = ... }).
function M.settings()
  return { pool = pool }
end

M.DEFAULT_POOL = DEFAULT_POOL

return M
