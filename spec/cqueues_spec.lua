-- cqueues_spec.lua — smsend ops inside a cqueues controller (Debian's lua-cqueues), with no adapter:
-- an op speaks cqueues' pollable protocol (pollfd, events, timeout), so cqueues.poll(op) parks the
-- coroutine until the op has work, while other coroutines of the controller keep running.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local ops = require "spec.support.ops"
local cqueues = ops.optional("cqueues", "lua-cqueues", "smsend ops in cqueues")
if not cqueues then return end

local RCPT = ops.RCPT

-- Waits for op the cqueues way: poll, and park on the op until it has work. Counts the parkings.
local function await(op, stats)
  while true do
    local st = op:poll()
    if st then return st end
    cqueues.poll(op)
    if stats then stats.parked = (stats.parked or 0) + 1 end
  end
end

-- A coroutine on cq ticking every 10 ms until stop() is called: ticks and the worst gap (ms).
local function ticker(cq)
  local t = { ticks = 0, worst = 0, running = true }
  cq:wrap(function()
    local last = cqueues.monotime()
    while t.running do
      cqueues.sleep(0.01)
      local now = cqueues.monotime()
      t.ticks = t.ticks + 1
      t.worst = math.max(t.worst, (now - last) * 1000)
      last = now
    end
  end)
  function t.stop() t.running = false end
  return t
end

local function loop(cq)
  local t0 = cqueues.monotime()
  local ok, err = cq:loop(30)
  assert(ok, err)
  assert.is_true(cq:empty(), "a coroutine was still running after 30 s")
  return cqueues.monotime() - t0
end

describe("smsend ops in cqueues", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })
  local gw = ops.bind(sb)

  it("cqueues.poll(op) lets a ticking coroutine run on while the gateway takes 2 s", function()
    local c = gw.client{ base_url = sb.url_for("slow-2000") }
    local cq = cqueues.new()
    local tk = ticker(cq)
    local st, stats = nil, {}
    cq:wrap(function()
      st = await(c:request_pin_async{ recipient = RCPT }, stats)
      tk.stop()
    end)
    local took = loop(cq)
    assert.is_true(st.ok, st.message)
    assert.is_true(took >= 1.95, tostring(took))
    assert.is_true(tk.ticks >= 150, "the ticker ticked only " .. tk.ticks .. " times in " .. took .. " s")
    assert.is_true(tk.worst < 50, "worst gap between 10 ms ticks: " .. tk.worst .. " ms")
    -- it parked a few times (connect, request, answer), not once per tick
    assert.is_true(stats.parked >= 1 and stats.parked < 50, tostring(stats.parked))
    assert.equal(1, gw.recorded("2fa/request"))
    assert.is_string(sb:last_pin(RCPT))
  end)

  it("runs several coroutines with ops of one client (one descriptor) at once, then request and verify", function()
    local c = gw.client{ base_url = sb.url_for("slow-300") }
    local cq = cqueues.new()
    local results = {}
    for i = 1, 6 do
      cq:wrap(function() results[i] = await(c:request_pin_async{ recipient = ops.number(i) }) end)
    end
    local flow = {}
    cq:wrap(function()
      flow.request = await(c:request_pin_async{ recipient = RCPT })
      flow.verify = await(c:verify_pin_async{ recipient = RCPT, pin = sb:last_pin(RCPT) })
    end)
    local took = loop(cq)
    for i = 1, 6 do assert.is_true(results[i].ok, "op " .. i .. ": " .. tostring(results[i].message)) end
    assert.is_true(flow.request.ok)
    assert.is_true(flow.verify.ok, flow.verify.message)
    -- 7 requests over at most 4 connections: two rounds of 0.3 s, then the verify
    -- (under make asan/valgrind every step runs many times slower: only the order of magnitude)
    assert.is_true(took < (os.getenv("SMSEND_HARDENING") and 20 or 2), tostring(took))
    assert.equal(7, gw.recorded("2fa/request"))
    assert.is_true(gw.connections() <= 4)
  end)

  it("wakes on op:timeout() when nothing arrives: a hung gateway gives timeout", function()
    local c = gw.client{ base_url = sb.url_for("hang"), timeout = 0.5 }
    local cq = cqueues.new()
    local st
    cq:wrap(function() st = await(c:request_pin_async{ recipient = RCPT }) end)
    local took = loop(cq)
    assert.equal("timeout", st.error, st.message)
    assert.is_false(st.retryable)
    assert.is_true(took >= 0.45 and took < 2, tostring(took))
  end)

  it("gives cqueues.poll's own timeout back while the op waits on the gateway", function()
    local c = gw.client{ base_url = sb.url_for("hang"), timeout = 10 }
    local cq = cqueues.new()
    local op = c:request_pin_async{ recipient = RCPT }
    local early
    cq:wrap(function()
      -- once the request is out and only libcurl's long timer is left, poll(op, 0.2) times out
      for attempt = 1, 20 do
        local t0 = cqueues.monotime()
        local ready = cqueues.poll(op, 0.2)
        early = { ready = ready, took = cqueues.monotime() - t0, attempt = attempt }
        if ready ~= op then break end -- a timeout: cqueues.poll returns the number it was given
        op:poll()
      end
    end)
    loop(cq)
    assert.equal(0.2, early.ready, "cqueues.poll(op, 0.2) kept returning the op")
    assert.is_true(early.attempt <= 10, tostring(early.attempt))
    assert.is_true(early.took >= 0.15 and early.took < 0.5, tostring(early.took))
    assert.is_nil(op:poll())
    assert.is_false(op:cancel().retryable) -- the hung request had been written
  end)

  -- Another coroutine cancels the op (or closes its client) while the waiter is parked.
  local function parked_waiter(stop)
    local c = gw.client{ base_url = sb.url_for("hang"), timeout = 10 }
    local cq = cqueues.new()
    local op = c:request_pin_async{ recipient = RCPT }
    local st, woke
    cq:wrap(function()
      st = await(op)
      woke = cqueues.monotime()
    end)
    local stopped
    cq:wrap(function()
      cqueues.sleep(0.5)
      stop(op, c)
      stopped = cqueues.monotime()
    end)
    loop(cq)
    assert.equal("cancelled", st.error)
    return woke - stopped
  end

  it("wakes a waiter with a condition variable when another coroutine cancels the op", function()
    local cond = require("cqueues.condition").new()
    local c = gw.client{ base_url = sb.url_for("hang"), timeout = 10 }
    local cq = cqueues.new()
    local op = c:request_pin_async{ recipient = RCPT }
    local st, woke, stopped
    cq:wrap(function()
      repeat
        st = op:poll()
        if not st then cqueues.poll(op, cond) end
      until st
      woke = cqueues.monotime()
    end)
    cq:wrap(function()
      cqueues.sleep(0.5)
      op:cancel()
      cond:signal()
      stopped = cqueues.monotime()
    end)
    loop(cq)
    assert.equal("cancelled", st.error)
    assert.is_true(woke - stopped < 0.1, tostring(woke - stopped))
  end)

  it("wakes a waiter parked in cqueues.poll(op) soon after another coroutine cancels the op", function()
    -- the cancel makes op:pollfd() readable (an eventfd in it), so the waiter does not sleep on
    local late = parked_waiter(function(op) op:cancel() end)
    assert(late < 0.2, ("the parked waiter woke %.2f s after the cancel"):format(late))
  end)

  it("wakes a waiter parked in cqueues.poll(op) soon after another coroutine closes the client", function()
    -- the descriptor stays the op's (open, readable) after the close, until the op is collected
    local late = parked_waiter(function(_, c) c:close() end)
    assert(late < 0.2, ("the parked waiter woke %.2f s after the close"):format(late))
  end)

  it("logs in once for many coroutines that need keys", function()
    local c = gw.login_client()
    local cq = cqueues.new()
    local results = {}
    for i = 1, 5 do
      cq:wrap(function() results[i] = await(c:request_pin_async{ recipient = ops.number(10 + i) }) end)
    end
    loop(cq)
    for i = 1, 5 do assert.is_true(results[i].ok, tostring(results[i].message)) end
    assert.equal(1, gw.recorded("login"))
    assert.equal(5, gw.recorded("2fa/request"))
  end)
end)
