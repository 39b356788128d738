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
--   no free thread VM (lua_worker_thread_vm_pool_size), the pool's queue is full (max_queue)
--                                                 -> error "busy", retryable = true: nothing was
--                                                    sent; try again when the load goes down
--   no memory for the task                        -> error "out_of_memory", retryable = true
--   a Lua error inside the thread (after the checks here, so most likely memory)
--                                                 -> error "out_of_memory", retryable = false: the
--                                                    request may have reached the gateway
-- nginx gives these only as text (ngx.run_worker_thread returns false, message), so the fixed
-- messages of lua-nginx-module (0.10.23 to today) are compared whole.
-- `elapsed` of a call that ran is the time in the thread, without the wait in the pool's queue.
-- Like require("smsend"), misuse raises: opts that is not a table, a pool name that is not a string.
--
-- Claims for all workers of one nginx: with `lua_shared_dict smsend 1m;` in the http block and
-- resty.configure{ shared_dict = "smsend" } (in init_by_lua), a request_pin with min_interval
-- and/or pins_per_window (window, default 600 s) first claims the number in that dict, in the
-- event loop: shdict:add of "<key>:c" for min_interval seconds, and shdict:incr of "<key>:w"
-- (created with the window as its ttl) for pins_per_window, both undone when refused. <key> is
-- smsend.guard_key(recipient, opts): a keyed hash, never the number. A refused claim is the
-- "cooldown" status table at once (retry_after = seconds until it frees), without taking a
-- thread; the thread then runs with min_interval = 0 (the dict has claimed already). The claim is
-- given back when the call certainly sent nothing (retryable = true, invalid_request,
-- country_not_allowed). When the dict fails (no memory): guard_fail = "closed" (the default) is
-- error "guard_unavailable", retryable = true; "open" sends anyway and says so in `message`.
-- With guard = "redis://..." the dict is skipped: the claim is made in C, in the thread.
--
-- Metrics for all workers of one nginx: with `lua_shared_dict smsend_metrics 1m;`,
-- resty.configure{ metrics_dict = "smsend_metrics" } (init_by_lua) and resty.init_worker()
-- (init_worker_by_lua), resty.metrics() is the Prometheus text of smsend.metrics() summed over the
-- workers. init_worker is a call of its own because timers exist only in workers (init_by_lua runs
-- in the master, where ngx.timer is disabled), and init_worker_by_lua is the one place every
-- worker passes before it serves anything: its counters are taken there as the starting point.
--
-- Sizing: threads per pool ~ PIN requests per second x gateway latency (s) / workers;
-- lua_worker_thread_vm_pool_size >= the peak of calls in flight per worker (else "busy"). Keep
-- max_queue at its default (65536): lua-nginx-module before 0.10.32 (Debian 12 has 0.10.23) may
-- abort the worker right after a task finds the queue full.

local M = {}

local DEFAULT_POOL = "smsend"
local pool = DEFAULT_POOL
local dict_name -- lua_shared_dict for claims (resty.configure{ shared_dict = ... }), nil = none

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

-- Added to the module's "no credentials" message when the call ran in an nginx worker thread: nginx
-- clears the environment of its workers except for the variables named by `env` directives, so
-- SMSEND_* set in the shell that started nginx are not seen.
local NO_CREDENTIALS_IN_NGINX = " (inside nginx: a worker sees only the environment variables named"
  .. " by `env` directives in the main context of nginx.conf; add `env SMSEND_USER_KEY;` with"
  .. " `env SMSEND_ACCESS_TOKEN;` or `env SMSEND_SESSION_KEY;`, or `env SMSEND_USERNAME;` with"
  .. " `env SMSEND_PASSWORD;`, or pass the credentials as options)"

-- Loaded on the first direct call; inside nginx the worker VM needs it only for guard_key (pure
-- computation, nothing that blocks).
local smsend

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

-- Maps the `false, message` of ngx.run_worker_thread to a status table. The fixed messages of
-- lua-nginx-module are compared whole; the others come from require in the thread VM.
local function bridge_failure(msg, pool_name, started, raised)
  msg = tostring(msg)
  if msg == ("thread pool %s not found"):format(pool_name) then
    return failure("invalid_request",
      ("nginx has no thread pool '%s' (add to the main context of nginx.conf: thread_pool %s threads=16;)")
        :format(pool_name, pool_name), false, started, "pool")
  end
  if msg == "no available Lua vm" then
    return failure("busy",
      "every worker-thread Lua VM of this nginx worker is busy (raise lua_worker_thread_vm_pool_size): "
        .. msg, true, started)
  end
  if msg == "ngx_thread_task_post failed" then
    return failure("busy",
      ("the queue of thread pool '%s' is full (raise max_queue= of its thread_pool line): %s")
        :format(pool_name, msg), true, started)
  end
  if msg == "no memory" then
    return failure("out_of_memory", "nginx is out of memory for a worker-thread task", true, started)
  end
  if msg == "invalid lua module" or msg == "invalid function" or msg:find("module 'smsend'", 1, true)
      or msg:find("smsend: libcurl", 1, true) or msg:find("loop or previous error", 1, true) then
    return failure("invalid_request",
      "the worker thread could not load smsend (is it on lua_package_cpath?): " .. msg, false, started)
  end
  if msg:find(" in the argument$") then
    return failure("invalid_request", "the request cannot be passed to a worker thread: " .. msg,
      false, started)
  end
  if raised then
    return failure("invalid_request", "ngx.run_worker_thread refused the call: " .. msg, false, started)
  end
  return failure("out_of_memory",
    "the worker thread failed; the request may have reached the gateway: " .. msg, false, started)
end

-- Claims in the shared dict ------------------------------------------------------------------

-- Codes that say the call certainly sent nothing, beside retryable = true.
local NOTHING_SENT = { invalid_request = true, country_not_allowed = true }

local claim_seq = 0

local function positive(v)
  v = tonumber(v)
  return v and v > 0 and v or nil
end

local function dict_ttl(dict, key)
  local ttl = dict:ttl(key)
  return ttl and ttl > 0 and ttl or nil
end

-- Undoes what a claim holds: the cooldown entry only while it still carries our token.
local function dict_release(dict, c)
  if c.token and dict:get(c.key .. ":c") == c.token then dict:delete(c.key .. ":c") end
  if c.counted then dict:incr(c.key .. ":w", -1) end
end

-- One attempt: → claim table | nil, seconds to wait | nil, nil, error from the dict.
local function dict_try(dict, key, interval, limit, window)
  local c = { key = key }
  local wait = 0
  if interval then
    claim_seq = claim_seq + 1
    local token = ("%d:%d:%.6f"):format(ngx.worker.pid(), claim_seq, ngx.now())
    local ok, err = dict:add(key .. ":c", token, interval)
    if ok then
      c.token = token
    elseif err == "exists" then
      wait = dict_ttl(dict, key .. ":c")
      if not wait then return nil, 0 end -- it expired just now: try again
    else
      return nil, nil, err
    end
  end
  if limit then
    local n, err = dict:incr(key .. ":w", 1, 0, window)
    if not n then
      dict_release(dict, c)
      return nil, nil, err
    end
    c.counted = true
    if n > limit then wait = math.max(wait, dict_ttl(dict, key .. ":w") or window) end
  end
  if wait > 0 then
    dict_release(dict, c)
    return nil, wait
  end
  return c
end

local function refused(opts, interval, limit, wait, started)
  local st = failure("cooldown", interval and not limit
    and ("a PIN was requested for this recipient less than %g seconds ago"):format(interval)
    or ("this recipient had its PINs for now (min_interval %g s, at most %s per %g s)")
      :format(interval or 0, tostring(limit or "-"), positive(opts.window) or 600), false, started)
  st.retry_after = math.ceil(wait)
  return st
end

-- The guard options the dict path reads (the thread never sees them): nil or a status table.
local function check_guard_opts(opts, started)
  local function bad(name, what)
    return failure("invalid_request", ("%s must be %s"):format(name, what), false, started, name)
  end
  local function number(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
  local v = opts.min_interval
  if v ~= nil and not (number(v) and v >= 0) then return bad("min_interval", "a number of seconds >= 0") end
  v = opts.pins_per_window
  if v ~= nil and not (number(v) and v >= 0 and v == math.floor(v)) then
    return bad("pins_per_window", "a whole number >= 0")
  end
  v = opts.window
  if v ~= nil and not (number(v) and v > 0) then return bad("window", "a number of seconds > 0") end
  v = opts.guard_fail
  if v ~= nil and v ~= "closed" and v ~= "open" then return bad("guard_fail", '"closed" or "open"') end
end

-- → claim | nil, status table (refused or unavailable) | false, note (guard_fail = "open").
local function dict_claim(dict, opts, started)
  local st = check_guard_opts(opts, started)
  if st then return nil, st end
  local interval, limit = positive(opts.min_interval), positive(opts.pins_per_window)
  if not interval and not limit then return nil end
  local key = smsend.guard_key(opts.recipient, opts)
  if not key then return nil end -- not a number: the module's own check in the thread says why
  local window = positive(opts.window) or 600
  local c, wait, err = dict_try(dict, key, interval, limit, window)
  if not c and wait == 0 then c, wait, err = dict_try(dict, key, interval, limit, window) end
  if c then return c end
  if wait and wait > 0 then return nil, refused(opts, interval, limit, wait, started) end
  local why = ("the lua_shared_dict '%s' failed to claim the number: %s"):format(dict_name, tostring(err))
  if opts.guard_fail == "open" then return false, why end
  return nil, failure("guard_unavailable", why, true, started)
end

-- Metrics over every worker -----------------------------------------------------------------
--
-- smsend.stats() counts per process, and every nginx worker is a process: its main VM and its
-- thread VMs share one set of C counters. Each worker adds what its counters grew by since its
-- last publication into the metrics dict (shdict:incr, so the dict holds the sum over workers),
-- on a timer and at each scrape; a worker keeps the values it last published, and a new worker
-- (crash, reload) starts from its own counters at init_worker, so the sums never go back. The
-- dict's keys are the sample names of smsend.metrics() itself ('smsend_calls_total{op="...",
-- outcome="..."}'), whose labels are operations, error codes and bucket bounds only.

local metrics_dict_name      -- resty.configure{ metrics_dict = ... }, nil = none
local metrics_interval = 1   -- seconds between publications (resty.configure{ metrics_interval })
local published              -- sample → value this worker last added; nil until init_worker
local timer_started = false

-- Outcomes this module answers itself in nginx, without the C module (claims refused by the dict,
-- busy, bridge errors): the module never counts those, so they are added here, per worker VM.
local own = {}

local function own_add(sample, n)
  own[sample] = (own[sample] or 0) + n
end

local function count_own(op, st)
  own_add(('smsend_calls_total{op="%s",outcome="%s"}'):format(op, tostring(st.error)), 1)
  if st.error == "cooldown" then own_add("smsend_cooldown_refusals_total", 1) end
end

-- The samples of the Prometheus text t: name{labels} → number (comments skipped).
local function samples(t)
  local out = {}
  for line in t:gmatch("[^\n]+") do
    local name, value = line:match("^([^#%s]%S*) (%S+)$")
    if name then out[name] = tonumber(value) end
  end
  return out
end

-- This process's counters (smsend.metrics()) with this VM's own outcomes added.
local function local_samples(text)
  local s = samples(text)
  for k, n in pairs(own) do
    if s[k] then s[k] = s[k] + n end
  end
  return s
end

local function metrics_dict(ngx)
  local d = ngx.shared and ngx.shared[metrics_dict_name]
  if not d then
    error(("smsend.resty: nginx has no lua_shared_dict '%s' (add to the http block of nginx.conf: "
      .. "lua_shared_dict %s 1m;)"):format(metrics_dict_name, metrics_dict_name), 3)
  end
  return d
end

-- Adds what this worker's counters grew by since its last publication to the dict.
local function publish(ngx, text)
  smsend = smsend or require "smsend"
  local dict = metrics_dict(ngx)
  for name, v in pairs(local_samples(text or smsend.metrics())) do
    local grown = v - (published[name] or 0)
    if grown > 0 then
      local ok, err = dict:incr(name, grown, 0)
      if ok then
        published[name] = v
      else -- kept for the next publication
        ngx.log(ngx.ERR, "smsend.resty: cannot publish ", name, " in lua_shared_dict '",
          metrics_dict_name, "': ", tostring(err))
      end
    end
  end
end

-- A sample value as Prometheus text: integers whole, seconds with at most 6 decimals (as
-- smsend.metrics() writes them), with no locale involved.
local function value_text(v)
  if v == math.floor(v) then return ("%.0f"):format(v) end
  local us = math.floor(v * 1e6 + 0.5)
  return (("%d.%06d"):format(math.floor(us / 1e6), us % 1e6):gsub("0+$", ""):gsub("%.$", ""))
end

-- The Prometheus text of `text` (comments, order) with each sample's value from value_of(name).
local function render(text, value_of)
  return (text:gsub("([^\n]+)", function(line)
    if line:sub(1, 1) == "#" then return line end
    local name = line:match("^(%S+) ")
    return name and (name .. " " .. value_text(value_of(name))) or line
  end))
end

local function worker_ngx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.shared) == "table"
      and ngx.get_phase() ~= "init" then
    return ngx
  end
end

-- The light thread that keeps a request (and an exiting worker) alive while its call runs in a
-- worker thread; killed as soon as the call is back.
local function keep_alive()
  ngx.sleep(3600)
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
    return false, direct(op, opts)
  end
  local phase = ngx.get_phase()
  if phase == "init" then
    return false, direct(op, opts)
  end
  local run = ngx.run_worker_thread

  local started = now()
  if not YIELDABLE[phase] then
    return true, failure("invalid_request",
      ("smsend.resty: nginx cannot wait for a worker thread in the %s phase, and a direct call would "
        .. "freeze this worker; call it from a rewrite/access/content handler or ngx.timer.at(0, ...)")
        :format(phase), false, started)
  end
  if run == nil then
    return true, failure("invalid_request",
      "smsend.resty: this nginx has no ngx.run_worker_thread (needs lua-nginx-module >= 0.10.22 "
        .. "and nginx built with thread support)", false, started)
  end
  -- Name the offending field ourselves: nginx's own message does not say which one it was.
  for k, v in pairs(opts) do
    if not CROSSES[type(v)] or not CROSSES[type(k)] then
      local name = type(k) == "string" and k or ("(" .. type(k) .. " key)")
      return true, failure("invalid_request",
        ("%s must be a string, number or boolean to reach a worker thread, got %s")
          :format(name, type(v)), false, started, name)
    end
  end

  -- The claim in the shared dict, before any thread is taken.
  local dict, claim, note, thread_opts = nil, nil, nil, opts
  if op == "request_pin" and dict_name
      and not (type(opts.guard) == "string" and opts.guard:sub(1, 8) == "redis://") then
    dict = ngx.shared[dict_name]
    if not dict then
      return true, failure("invalid_request",
        ("nginx has no lua_shared_dict '%s' (add to the http block of nginx.conf: lua_shared_dict %s 1m;)")
          :format(dict_name, dict_name), false, started, "shared_dict")
    end
    smsend = smsend or require "smsend"
    local c, st = dict_claim(dict, opts, started)
    if c == nil and st then return true, st end
    if c ~= nil then
      claim, note = c or nil, c == false and st or nil
      -- the dict has claimed (or guard_fail = "open" let it through): the thread must not again
      thread_opts = {}
      for k, v in pairs(opts) do thread_opts[k] = v end
      if thread_opts.min_interval ~= nil then thread_opts.min_interval = 0 end
      thread_opts.pins_per_window, thread_opts.window, thread_opts.guard_fail = nil, nil, nil
    end
  end

  -- ngx.run_worker_thread raises only before it posts the task (e.g. a phase it refuses), and
  -- returns false, message for everything else.
  local status, here
  -- lua-nginx-module (0.10.23) does not wait for a request parked in ngx.run_worker_thread when
  -- its worker exits (reload, quit): the answer of a call whose SMS went out would be lost, and a
  -- client that retries would send a second SMS. A light thread sleeping beside the call keeps the
  -- request, and so the exiting worker, alive until the answer is back.
  local keeper = ngx.thread.spawn(keep_alive)
  local okcall, ok, res = pcall(run, pool_name, "smsend", op, thread_opts)
  ngx.thread.kill(keeper)
  if not okcall then
    status, here = bridge_failure(ok, pool_name, started, true), true
  elseif not ok then
    status = bridge_failure(res, pool_name, started)
    -- all but "the thread failed": that call ran in the module, which counts its own
    here = not (status.error == "out_of_memory" and status.retryable == false)
  elseif type(res) ~= "table" then
    status = failure("out_of_memory", "the worker thread returned no status table", false, started)
  else
    status = res
    if status.error == "invalid_request" and status.field == "user_key"
        and tostring(status.message):find("^no credentials") then
      status.message = status.message .. NO_CREDENTIALS_IN_NGINX
    end
  end
  if claim and (status.retryable == true or NOTHING_SENT[status.error]) then
    dict_release(dict, claim)
  end
  if note then
    status.message = ("%s (%s; sent without a claim: guard_fail = \"open\")"):format(tostring(status.message), note)
  end
  return here, status
end

-- What a call in nginx ends with: outcomes answered here are counted here, and a worker that is
-- exiting (its timer ran for the last time already) publishes each call as it finishes.
local function counted(op, here, st)
  if here then count_own(op, st) end
  if published then
    local ngx = worker_ngx()
    if ngx and ngx.worker.exiting() then pcall(publish, ngx) end
  end
  return st
end

--- Sends a PIN; opts are those of require("smsend").request_pin (request fields and options).
function M.request_pin(opts, how)
  return counted("request_pin", call("request_pin", opts, how))
end

--- Checks a PIN; opts are those of require("smsend").verify_pin.
function M.verify_pin(opts, how)
  return counted("verify_pin", call("verify_pin", opts, how))
end

--- resty.configure{ pool = "name", shared_dict = "name" | false, metrics_dict = "name" | false,
--- metrics_interval = seconds }: the default thread pool of this Lua VM, the lua_shared_dict that
--- holds claims for every worker (false: none, the default), the one that sums the counters of
--- every worker for resty.metrics() (false: none, the default), and how often each worker adds
--- its counters there (default 1 s). Set them in init_by_lua and every worker inherits them.
--- Returns the previous settings.
function M.configure(settings)
  if type(settings) ~= "table" then
    error("bad argument #1 to 'configure' (table expected, got " .. type(settings) .. ")", 2)
  end
  local old = M.settings()
  for k, v in pairs(settings) do
    if k == "pool" then
      if type(v) ~= "string" or v == "" then
        error("smsend.resty.configure: pool must be a non-empty string", 2)
      end
    elseif k == "shared_dict" or k == "metrics_dict" then
      if v ~= false and (type(v) ~= "string" or v == "") then
        error(("smsend.resty.configure: %s must be a non-empty string or false"):format(k), 2)
      end
    elseif k == "metrics_interval" then
      if type(v) ~= "number" or not (v > 0 and v < math.huge) then
        error("smsend.resty.configure: metrics_interval must be a number of seconds > 0", 2)
      end
    else
      error("smsend.resty.configure: unknown setting '" .. tostring(k) .. "'", 2)
    end
  end
  if settings.pool then pool = settings.pool end
  if settings.shared_dict ~= nil then dict_name = settings.shared_dict or nil end
  if settings.metrics_dict ~= nil then metrics_dict_name = settings.metrics_dict or nil end
  if settings.metrics_interval then metrics_interval = settings.metrics_interval end
  return old
end

--- The current settings ({ pool = ..., shared_dict = ... or false, metrics_dict = ... or false,
--- metrics_interval = seconds }).
function M.settings()
  return { pool = pool, shared_dict = dict_name or false, metrics_dict = metrics_dict_name or false,
           metrics_interval = metrics_interval }
end

--- Call from init_worker_by_lua, in every worker, after resty.configure{ metrics_dict = ... }:
--- takes this worker's counters as they are (inherited from the master, they belong to no call of
--- this worker) and starts the ngx.timer.every that adds their growth to the metrics dict. The
--- timer's last run, when the worker exits gracefully (reload, quit), publishes what is left.
--- Raises outside init_worker_by_lua, without a metrics_dict, or without its lua_shared_dict.
function M.init_worker()
  local ngx = worker_ngx()
  if not ngx or ngx.get_phase() ~= "init_worker" then
    error("smsend.resty.init_worker: call it from init_worker_by_lua", 2)
  end
  if not metrics_dict_name then
    error("smsend.resty.init_worker: no metrics dict (resty.configure{ metrics_dict = \"name\" } "
      .. "in init_by_lua, with lua_shared_dict name 1m; in the http block)", 2)
  end
  metrics_dict(ngx)
  if timer_started then return end
  smsend = smsend or require "smsend"
  published = local_samples(smsend.metrics())
  local ok, err = ngx.timer.every(metrics_interval, function()
    -- premature (the worker is exiting): this is the last run, and it publishes too
    local done, why = pcall(publish, ngx)
    if not done then ngx.log(ngx.ERR, "smsend.resty: publishing the counters failed: ", tostring(why)) end
  end)
  if not ok then
    error("smsend.resty.init_worker: ngx.timer.every failed: " .. tostring(err), 2)
  end
  timer_started = true
end

--- The Prometheus text (format 0.0.4) of smsend's counters. In an nginx worker: summed over every
--- worker of this nginx (this worker's up to now, the others' as of their last publication, at
--- most metrics_interval ago), which needs metrics_dict and resty.init_worker() (else it raises).
--- Elsewhere (plain Lua, init_by_lua, a worker-thread VM): this process's counters, as
--- require("smsend").metrics() gives them. The names, types, labels and order are those of
--- smsend.metrics(); calls that smsend.resty answered itself (busy, claims refused by the dict,
--- bridge errors) are counted in smsend_calls_total too.
function M.metrics()
  smsend = smsend or require "smsend"
  local text = smsend.metrics()
  local ngx = worker_ngx()
  if not ngx then
    local s = local_samples(text)
    return render(text, function(name) return s[name] or 0 end)
  end
  if not metrics_dict_name or not published then
    error("smsend.resty.metrics: in nginx the sum over workers needs resty.configure{ metrics_dict = "
      .. "\"name\" } (init_by_lua) and resty.init_worker() (init_worker_by_lua)", 2)
  end
  publish(ngx, text)
  local dict = metrics_dict(ngx)
  return render(text, function(name) return dict:get(name) or 0 end)
end

M.DEFAULT_POOL = DEFAULT_POOL

return M
