-- luv_spec.lua — smsend.luv (lua/smsend/luv.lua) on luv's default loop against the sandbox: await's
-- callback comes exactly once and its handles close, the loop keeps turning while the gateway is
-- slow, ops of one client share one descriptor, the coroutine wait, timeouts, closed clients.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
package.path = helpers.repo_root .. "/lua/?.lua;" .. package.path

local ops = require "spec.support.ops"
local uv = ops.optional("luv", "lua-luv", "smsend.luv")
if not uv then return end

local sluv = require "smsend.luv"

local RCPT = ops.RCPT

-- The handles of the default loop that are not closing (uv.walk sees every one of them).
local function open_handles()
  local n = 0
  uv.walk(function(h) if not h:is_closing() then n = n + 1 end end)
  return n
end

-- Runs the default loop until nothing is left, with a watchdog (unref'd: it keeps nothing alive).
-- Returns the seconds it ran and whether the watchdog had to stop it.
local function run_loop(limit)
  local stopped = false
  local dog = uv.new_timer()
  dog:start(math.floor((limit or 15) * 1000), 0, function() stopped = true; uv.stop() end)
  dog:unref()
  local t0 = uv.hrtime()
  uv.run()
  dog:close()
  uv.run("nowait") -- let the watchdog's close finish
  return (uv.hrtime() - t0) / 1e9, stopped
end

-- A 10 ms repeating timer counting ticks and the longest gap between two of them (ms).
local function ticker()
  local t = { ticks = 0, worst = 0 }
  local last = uv.hrtime()
  t.timer = uv.new_timer()
  t.timer:start(10, 10, function()
    local now = uv.hrtime()
    t.ticks = t.ticks + 1
    local gap = (now - last) / 1e6
    if gap > t.worst then t.worst = gap end
    last = now
  end)
  function t.stop() t.timer:close() end
  return t
end

describe("smsend.luv", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })

  local gw = ops.bind(sb)
  local client, recorded = gw.client, gw.recorded

  before_each(function()
    assert.equal(0, open_handles(), "a handle was left open by an earlier test")
  end)

  describe("await", function()
    it("calls the callback exactly once with the op's status table, from the loop, and closes its handles", function()
      local c = client()
      local op = c:request_pin_async{ recipient = RCPT }
      local calls, got = 0, nil
      assert.equal(op, sluv.await(op, function(st) calls = calls + 1; got = st end))
      assert.equal(0, calls, "the callback ran inside await")
      assert.is_true(open_handles() >= 2)
      local _, stopped = run_loop()
      assert.is_false(stopped)
      assert.equal(1, calls)
      assert.is_true(got.ok, got.message)
      assert.equal(got, op:poll())
      assert.equal(0, open_handles())
      assert.equal(0, sluv.pending())
      assert.is_false(uv.loop_alive())
      assert.equal(1, recorded("2fa/request"))
    end)

    it("leaves the loop free while the gateway takes a second", function()
      local c = client{ base_url = sb.url_for("slow-1000") }
      local tk = ticker()
      local got
      sluv.await(c:request_pin_async{ recipient = RCPT }, function(st) got = st; tk.stop() end)
      local took = run_loop()
      assert.is_true(got.ok, got.message)
      assert.is_true(took >= 0.95, tostring(took))
      assert.is_true(tk.ticks >= 60, "the loop ticked only " .. tk.ticks .. " times in " .. took .. " s")
      assert.is_true(tk.worst < 50, "worst gap between 10 ms ticks: " .. tk.worst .. " ms")
    end)

    it("delivers many ops of one client (one descriptor) and of two clients, each once", function()
      local a, b = client{ base_url = sb.url_for("slow-200") }, client()
      -- (ops born done: they send nothing, and show the client's descriptor all the same)
      assert.equal(a:request_pin_async{ recipient = "bad" }:pollfd(), a:verify_pin_async{ recipient = RCPT, pin = "" }:pollfd())
      local seen, n = {}, 0
      for i = 1, 12 do
        local cl = i % 3 == 0 and b or a
        local op = cl:request_pin_async{ recipient = ops.number(100 + i) }
        sluv.await(op, function(st)
          seen[i] = (seen[i] or 0) + 1
          n = n + 1
          assert(st.ok, st.message) -- an error here would make the run stop short
        end)
      end
      assert.equal(12, sluv.pending())
      local _, stopped = run_loop()
      assert.is_false(stopped)
      assert.equal(12, n)
      for i = 1, 12 do assert.equal(1, seen[i], "op " .. i) end
      assert.equal(12, recorded("2fa/request"))
      assert.equal(0, open_handles())
    end)

    it("wakes on the op's timer when nothing arrives: a hung gateway gives timeout", function()
      local c = client{ base_url = sb.url_for("hang"), timeout = 0.5 }
      local got
      sluv.await(c:request_pin_async{ recipient = RCPT }, function(st) got = st end)
      local took = run_loop()
      assert.equal("timeout", got.error, got.message)
      assert.is_false(got.retryable)
      assert.is_true(took >= 0.45 and took < 2, tostring(took))
      assert.equal(0, open_handles())
    end)

    it("delivers an op born done (bad fields) on the next iteration, nothing sent", function()
      local c = client()
      local got, inside = nil, true
      sluv.await(c:request_pin_async{ recipient = "12" }, function(st) got = st; assert(not inside) end)
      inside = false
      run_loop()
      assert.equal("invalid_request", got.error)
      assert.equal("recipient", got.field)
      assert.equal(0, recorded())
    end)

    it("delivers the ops of a closed client as cancelled, and a new client's op on a reused descriptor", function()
      local old = client{ base_url = sb.url_for("hang"), timeout = 10 }
      local op = old:request_pin_async{ recipient = RCPT }
      local fd = op:pollfd()
      local got, fresh
      sluv.await(op, function(st) got = st end)
      local t = uv.new_timer()
      t:start(200, 0, function()
        t:close()
        old:close()
        -- a client made now may get the closed client's descriptor number
        local c = client()
        local op2 = c:request_pin_async{ recipient = "+393471234500" }
        fresh = { fd = op2:pollfd() }
        sluv.await(op2, function(st) fresh.st = st; fresh.at = uv.hrtime() end)
      end)
      local t0 = uv.hrtime()
      local took = run_loop()
      assert.equal("cancelled", got.error)
      assert.is_false(got.retryable) -- the hung request had been written
      assert.is_true(took < sluv.MAX_WAIT + 1, tostring(took))
      assert.is_true(fresh.st.ok, fresh.st.message)
      assert.is_true((fresh.at - t0) / 1e9 < 1, "the new client's op waited on the old group")
      if fresh.fd ~= fd then print("(note: the new client got another descriptor: " .. fresh.fd .. " vs " .. fd .. ")") end
      assert.equal(0, open_handles())
    end)

    it("delivers the ops of a client closed from a timer within MAX_WAIT, though libcurl's timer is far", function()
      local c = client{ base_url = sb.url_for("hang"), timeout = 10 }
      local op = c:request_pin_async{ recipient = RCPT }
      local got, closed_at, got_at
      sluv.await(op, function(st) got, got_at = st, uv.hrtime() end)
      local t = uv.new_timer()
      t:start(300, 0, function() t:close(); c:close(); closed_at = uv.hrtime() end)
      run_loop()
      assert.equal("cancelled", got.error)
      local late = (got_at - closed_at) / 1e9
      assert.is_true(late <= sluv.MAX_WAIT + 0.3, tostring(late))
      assert.equal(0, open_handles())
    end)

    it("gives every op done in the same round its callback before a callback's error goes to luv", function()
      -- two ops of one client, cancelled together by its close: both are done in the same round
      local out = util.run_lua(([[
        io.stdout:setvbuf("no")
        local uv, sluv = require "luv", require "smsend.luv"
        local c = assert(require("smsend").new{ user_key = "SBXUSER", access_token = "SBXTOKEN", base_url = %q, timeout = 10 })
        sluv.await(c:request_pin_async{ recipient = "+393471234567" }, function() error("first callback broke") end)
        sluv.await(c:request_pin_async{ recipient = "+393471234568" }, function(st) print("second callback: " .. st.error) end)
        local t = uv.new_timer()
        t:start(200, 0, function() t:close(); c:close() end)
        uv.run()
      ]]):format(sb.url_for("hang")))
      assert.matches("second callback: cancelled", out, 1, true)
      assert.matches("first callback broke", out, 1, true) -- luv reports it (and exits, its default)
    end)

    it("delivers an op of a client closed before the await, without touching the closed descriptor", function()
      local c = client{ base_url = sb.url_for("hang"), timeout = 10 }
      local op = c:request_pin_async{ recipient = RCPT }
      c:close()
      local got
      sluv.await(op, function(st) got = st end)
      local took = run_loop()
      assert.equal("cancelled", got.error)
      assert.is_true(took < 0.5, tostring(took))
    end)

    it("raises on misuse", function()
      local c = client()
      local op = c:request_pin_async{ recipient = RCPT }
      assert.has_error(function() sluv.await(nil, function() end) end)
      assert.has_error(function() sluv.await({ poll = function() end }, function() end) end)
      assert.has_error(function() sluv.await(op) end)
      sluv.await(op, function() end)
      assert.has_error(function() sluv.await(op, function() end) end)
      run_loop()
    end)
  end)

  describe("wait inside a coroutine", function()
    it("runs request and verify as straight-line code while the loop keeps ticking", function()
      local c = client{ base_url = sb.url_for("slow-500") }
      local tk = ticker()
      local out = {}
      coroutine.wrap(function()
        local st = sluv.wait(c:request_pin_async{ recipient = RCPT })
        out.request = st
        if st.ok then
          out.wrong = sluv.wait(c:verify_pin_async{ recipient = RCPT, pin = "000000" == sb:last_pin(RCPT) and "111111" or "000000" })
          out.verify = sluv.wait(c:verify_pin_async{ recipient = RCPT, pin = sb:last_pin(RCPT) })
        end
        out.finished = true
        tk.stop()
      end)()
      assert.is_nil(out.request, "wait returned before the loop ran")
      local took = run_loop()
      assert.is_true(out.finished)
      assert.is_true(out.request.ok, out.request.message)
      assert.equal("wrong_pin", out.wrong.error)
      assert.is_true(out.verify.ok, out.verify.message)
      assert.is_true(took >= 1.45, tostring(took))
      assert.is_true(tk.ticks >= 90, "ticks: " .. tk.ticks)
      assert.is_true(tk.worst < 50, "worst gap: " .. tk.worst .. " ms")
    end)

    it("returns at once for an op already done, and refuses to run outside a coroutine", function()
      local c = client()
      local st
      coroutine.wrap(function() st = sluv.wait(c:request_pin_async{ recipient = "bad" }) end)()
      assert.equal("invalid_request", st.error)
      assert.has_error(function() sluv.wait(c:request_pin_async{ recipient = "bad" }) end)
      assert.equal(0, open_handles())
    end)

    it("waits for several ops in several coroutines at once", function()
      local c = client{ base_url = sb.url_for("slow-300") }
      local results = {}
      for i = 1, 6 do
        coroutine.wrap(function()
          results[i] = sluv.wait(c:request_pin_async{ recipient = ops.number(200 + i) })
        end)()
      end
      local took = run_loop()
      for i = 1, 6 do assert.is_true(results[i].ok, "op " .. i) end
      -- 4 connections per client: two rounds of 0.3 s, not six
      assert.is_true(took < 1.5, tostring(took))
    end)
  end)
end)
