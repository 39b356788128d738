-- smsend.luv — waits for smsend ops (client:request_pin_async / verify_pin_async) on luv's default
-- loop (Debian's lua-luv, Lua 5.4 and LuaJIT) without ever blocking it.
--
--   local uv = require "luv"
--   local sluv = require "smsend.luv"
--   local client = assert(require("smsend").new{ user_key = KEY, access_token = TOKEN })
--
--   -- a callback, called exactly once with the status table, always from the loop:
--   sluv.await(client:request_pin_async{ recipient = "+393471234567" }, function(st)
--     print(st.ok, st.error, st.message)
--   end)
--
--   -- or straight-line code in a coroutine: wait() yields it and the loop resumes it with the
--   -- table, so other handles keep running meanwhile
--   coroutine.wrap(function()
--     local st = sluv.wait(client:request_pin_async{ recipient = "+393471234567" })
--     if st.ok then st = sluv.wait(client:verify_pin_async{ recipient = "+393471234567", pin = typed }) end
--     print("verified:", st.ok)
--   end)()
--
--   uv.run()   -- returns once nothing is left to wait for
--
-- How: every op of one client has the same op:pollfd() (the client's epoll descriptor), and libuv
-- allows one poll handle per descriptor, so the ops are kept in groups by descriptor: one
-- uv.new_poll (readable: poll every op of the group) and one uv.new_timer, re-armed after every
-- round to the nearest op:timeout(). A group closes both handles once its last op is delivered.
-- A cancel or a client:close() makes the descriptor readable (it stays open, the op's, until the
-- op is collected), so such ops are delivered at once; the timer is still re-armed at most MAX_WAIT
-- seconds ahead, as a bound should anything else end an op without waking it. An error raised by a callback is raised again (luv then reports
-- it) once every other op that was done in the same round has had its callback.

local uv = require "luv"

local M = { MAX_WAIT = 1.0 }

local groups = {}   -- descriptor -> group { fd =, poll =, timer =, ops = { op, ... }, cbs = { [op] = cb } }
local loose = {}    -- groups no longer in `groups` (retired), still delivering

local check

local function close_handle(h)
  if h and not h:is_closing() then h:close() end
end

local function arm(g)
  local wait
  for _, op in ipairs(g.ops) do
    local t = op:timeout()
    if t and (not wait or t < wait) then wait = t end
  end
  if not wait or wait > M.MAX_WAIT then wait = M.MAX_WAIT end
  g.timer:stop()
  g.timer:start(math.ceil(wait * 1000), 0, g.on_timer)
end

local function finish(g)
  close_handle(g.poll)
  close_handle(g.timer)
  g.poll, g.timer = nil, nil
  if groups[g.fd] == g then groups[g.fd] = nil end
  loose[g] = nil
end

-- One round: poll every op of the group, take out the done ones, re-arm or close the handles, then
-- call the callbacks (the group is consistent before any user code runs).
check = function(g)
  local done, still = {}, {}
  for _, op in ipairs(g.ops) do
    local st = op:poll()
    if st then done[#done + 1] = { g.cbs[op], st }; g.cbs[op] = nil
    else still[#still + 1] = op end
  end
  g.ops = still
  if #still == 0 then finish(g) else arm(g) end
  local first_err
  for _, d in ipairs(done) do
    local ok, err = pcall(d[1], d[2])
    if not ok and first_err == nil then first_err = err end
  end
  if first_err ~= nil then error(first_err, 0) end
end

local function new_group(fd)
  local g = { fd = fd, ops = {}, cbs = {} }
  g.on_timer = function() check(g) end
  if fd then
    local poll, err = uv.new_poll(fd)
    if not poll then error("smsend.luv: cannot watch the op's descriptor " .. fd .. ": " .. tostring(err), 3) end
    g.poll = poll
    g.poll:start("r", function() check(g) end)
  end
  g.timer = assert(uv.new_timer())
  return g
end

-- A descriptor whose every op is done belongs to a client that was closed (its ops were cancelled)
-- or to ops about to be delivered; a new client may already have the same descriptor number, so
-- that group stops watching it and delivers its ops on the next loop iteration.
local function retire(g)
  close_handle(g.poll)
  g.poll = nil
  groups[g.fd] = nil
  loose[g] = true
  g.timer:stop()
  g.timer:start(0, 0, g.on_timer)
end

local function all_done(g)
  for _, op in ipairs(g.ops) do
    if not op:done() then return false end
  end
  return true
end

local function check_op(op)
  if type(op) ~= "userdata" or type(op.poll) ~= "function" or type(op.pollfd) ~= "function" then
    error("smsend.luv: expected an smsend.op (client:request_pin_async{...}), got " .. type(op), 3)
  end
end

-- Registers op on the default loop; callback(st) runs exactly once, from the loop, with the op's
-- status table (on the next iteration when the op is already done). Returns op.
function M.await(op, callback)
  check_op(op)
  if type(callback) ~= "function" then
    error("smsend.luv.await: expected a function as callback, got " .. type(callback), 2)
  end
  -- an op already done needs no descriptor (and its client's may be closed): a timer delivers it
  local fd = not op:done() and op:pollfd() or -1
  if fd < 0 then fd = nil end
  local g = fd and groups[fd]
  if g and g.cbs[op] then error("smsend.luv.await: this op is already awaited", 2) end
  if g and all_done(g) then retire(g); g = nil end
  if not g then
    g = new_group(fd)
    if fd then groups[fd] = g else loose[g] = true end
  end
  g.ops[#g.ops + 1] = op
  g.cbs[op] = callback
  -- the first round on the next loop iteration: the callback never runs inside await
  g.timer:stop()
  g.timer:start(0, 0, g.on_timer)
  return op
end

-- Waits for op inside a coroutine without blocking the loop: yields the running coroutine, which
-- the loop resumes with the status table. Returns at once when op is already done.
function M.wait(op)
  check_op(op)
  local co, main = coroutine.running()
  if not co or main then
    error("smsend.luv.wait: call it inside a coroutine (the loop resumes it); use await outside", 2)
  end
  local st = op:poll()
  if st then return st end
  M.await(op, function(result)
    local ok, err = coroutine.resume(co, result)
    if not ok then error(debug.traceback(co, err), 0) end
  end)
  return coroutine.yield()
end

-- How many ops are waiting on the loop (for tests and diagnostics).
function M.pending()
  local n = 0
  for _, g in pairs(groups) do n = n + #g.ops end
  for g in pairs(loose) do n = n + #g.ops end
  return n
end

return M
