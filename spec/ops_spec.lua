-- ops_spec.lua — the pollable calls (client:request_pin_async / verify_pin_async and the smsend.op
-- they return) against the sandbox: the fault matrix gives the same status table as the blocking
-- call, poll never blocks, cancel tells whether a byte went out, many ops share a client's
-- connections, the cooldown holds across ops, close and the collector cancel, lazy login and one
-- renewal inside the op, misuse raises, and no descriptor is left behind after 10 000 ops.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local socket = require "socket"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
local ops = require "spec.support.ops"

local RCPT = ops.RCPT
local now = socket.gettime

-- Drives op the way an event loop would: op:poll(), then wait on op:pollfd() (socket.select)
-- for at most op:timeout(). Returns the status table and what it saw: polls, the longest poll (s).
local function drive(op, limit)
  local fd = { getfd = function() return op:pollfd() end }
  local stats = { polls = 0, longest = 0 }
  local deadline = now() + (limit or 15)
  while true do
    local t0 = now()
    local st = op:poll()
    local took = now() - t0
    stats.polls = stats.polls + 1
    if took > stats.longest then stats.longest = took end
    if st then return st, stats end
    assert(now() < deadline, "the op did not finish in time")
    local wait = op:timeout()
    if not wait or wait > 0.05 then wait = 0.05 end
    socket.select({ fd }, nil, wait)
  end
end

-- Polls every op of the list until all are done; returns their status tables in order.
local function drive_all(list, limit)
  local out, left = {}, #list
  local deadline = now() + (limit or 20)
  while left > 0 do
    for i, op in ipairs(list) do
      if not out[i] then
        out[i] = op:poll()
        if out[i] then left = left - 1 end
      end
    end
    assert(now() < deadline, left .. " ops did not finish in time")
    if left > 0 then socket.sleep(0.002) end
  end
  return out
end

-- The same status table, field by field, except elapsed (each measures its own call) and the
-- milliseconds libcurl counted, which it quotes in some messages ("timed out after 501 ms").
local function same_table(blocking, async, what)
  local function ms(m) return (m:gsub("%d+ (m)", "N %1")) end
  -- which of its two texts libcurl gives for a connect timeout depends on which check fires first
  local function words(m)
    return (ms(m):gsub("Failed to connect to [^:]*: Timeout was reached", "Connection timeout after N ms"))
  end
  for k, v in pairs(blocking) do
    if k == "message" then
      assert.equal(words(v), words(async[k]), what .. ": field message")
    elseif k ~= "elapsed" then
      assert.same(v, async[k], what .. ": field " .. tostring(k))
    end
  end
  for k in pairs(async) do
    assert.is_not_nil(blocking[k], what .. ": the op has a field the blocking call has not: " .. tostring(k))
  end
  assert.is_number(async.elapsed, what)
end

-- n PIN requests started on client c, to ops.number(1..n).
local function start_many(c, n)
  local list = {}
  for i = 1, n do list[i] = c:request_pin_async{ recipient = ops.number(i) } end
  return list
end

-- Asserts how many of the status tables come from ops that went out (not retryable) and how many
-- from ops that never left the client's queue (retryable); check(st, i) runs on each first.
local function assert_sent_queued(tables, sent, queued, check)
  local n_sent, n_queued = 0, 0
  for i, st in ipairs(tables) do
    check(st, i)
    if st.retryable then n_queued = n_queued + 1 else n_sent = n_sent + 1 end
  end
  assert.equal(sent, n_sent, "ops that went out")
  assert.equal(queued, n_queued, "ops that stayed queued")
end

-- Polls the ops (each must stay in flight) until cond() is true, for at most 5 s.
local function poll_until(cond, list, what)
  local deadline = now() + 5
  while not cond() do
    for _, op in ipairs(list) do assert.is_nil(op:poll(), what) end
    assert.is_true(now() < deadline, what)
    socket.sleep(0.005)
  end
end

-- This process's open descriptors, read in-process (lfs comes with busted): an ls started with
-- io.popen could list the pipe's far end before this process has closed its copy.
local lfs = require "lfs"
local function open_fds()
  collectgarbage()
  collectgarbage()
  local n = 0
  for name in lfs.dir("/proc/self/fd") do
    if name:match("^%d+$") then n = n + 1 end
  end
  return n
end

-- A loopback listener driven from the test's own loop: accepts one connection and reads only its
-- first line, then stalls (the client has written its request; nothing is answered).
local function first_line_listener()
  local server = assert(socket.bind("127.0.0.1", 0))
  server:settimeout(0)
  local _, port = server:getsockname()
  local l = { port = tonumber(port) }
  function l.step()
    if not l.conn then
      l.conn = server:accept()
      if l.conn then l.conn:settimeout(0) end
    end
    if l.conn and not l.line then l.line = l.conn:receive("*l") end
    return l.line
  end
  function l.close()
    if l.conn then l.conn:close() end
    server:close()
  end
  return l
end

describe("smsend.op", function()
  local sb = helpers.sandbox_fixture({}, { reset_each = true })
  local gw = ops.bind(sb)
  local client, recorded = gw.client, gw.recorded

  describe("the API", function()
    it("polls to the same status table as the blocking call, and keeps it", function()
      local c = client()
      local op = c:request_pin_async{ recipient = RCPT, senderName = "MyApp", messageBody = "Code %PIN%" }
      assert.matches("^smsend%.op %(in flight%)", tostring(op))
      assert.is_false(op:done())
      assert.equal("r", op:events())
      local fd = op:pollfd()
      assert.is_true(math.type == nil or math.type(fd) == "integer")
      assert.is_true(fd >= 0)
      local t = op:timeout()
      assert.is_true(t == nil or t >= 0)
      local st = drive(op)
      assert.is_true(st.ok, st.message)
      assert.is_true(op:done())
      assert.equal(st, op:poll())
      assert.equal(st, op:wait())
      assert.equal(st, op:wait(0))
      assert.equal(st, op:cancel()) -- done: cancel changes nothing
      assert.equal(fd, op:pollfd())
      assert.equal(0, op:timeout())
      assert.matches("^smsend%.op %(done%)", tostring(op))
      same_table(c:request_pin{ recipient = RCPT, senderName = "MyApp", messageBody = "Code %PIN%" }, st, "ok")
      local reqs = gw.requests("2fa/request")
      assert.equal(2, #reqs)
      assert.equal(reqs[1].body, reqs[2].body)
      assert.equal('{"recipient":"+393471234567","senderName":"MyApp","messageBody":"Code %PIN%"}', reqs[1].body)
    end)

    it("wait(secs) returns nil when the time is up, and the table once done", function()
      local c = client{ base_url = sb.url_for("slow-500") }
      local op = c:request_pin_async{ recipient = RCPT }
      assert.is_nil(op:wait(0))
      local t0 = now()
      assert.is_nil(op:wait(0.2))
      local took = now() - t0
      assert.is_true(took >= 0.18 and took < 0.4, tostring(took))
      local st = op:wait(5)
      assert.is_true(st.ok, st.message)
      assert.is_true(st.elapsed >= 0.5, tostring(st.elapsed))
      assert.has_error(function() op:wait(-1) end)
      assert.has_error(function() op:wait("soon") end)
      assert.has_error(function() op:wait(0 / 0) end)
    end)

    it("measures elapsed from the start of the op, however late it is polled", function()
      local c = client{ base_url = sb.url_for("slow-300") }
      local t0 = now()
      local op = c:request_pin_async{ recipient = RCPT }
      socket.sleep(0.6)
      local st = drive(op)
      local since = now() - t0
      assert.is_true(st.ok, st.message)
      assert.is_true(st.elapsed >= 0.3 and st.elapsed <= since + 0.01, st.elapsed .. " vs " .. since)
    end)

    it("verifies a PIN as an op", function()
      local c = client()
      assert.is_true(drive(c:request_pin_async{ recipient = RCPT }).ok)
      local pin = sb:last_pin(RCPT)
      local wrong = drive(c:verify_pin_async{ recipient = RCPT, pin = pin == "000000" and "111111" or "000000" })
      assert.equal("wrong_pin", wrong.error)
      assert.equal(2, wrong.tries_remaining)
      local st = drive(c:verify_pin_async{ recipient = RCPT, pin = pin })
      assert.is_true(st.ok, st.message)
      assert.equal('{"recipient":"+393471234567","pin":"' .. pin .. '"}', gw.requests("2fa/verify")[2].body)
    end)
  end)

  describe("fault matrix: the op's table is the blocking call's", function()
    -- kind: "request" or "verify"; opts for both clients (made by gw.login_client when opts.login).
    local function parity(what, opts, kind)
      local make = client
      if opts.login then
        make, opts.login = gw.login_client, nil
      end
      local a, b = make(opts), make(opts)
      local blocking, op
      if kind == "verify" then
        blocking = a:verify_pin({ recipient = RCPT, pin = "123456" })
        op = b:verify_pin_async({ recipient = RCPT, pin = "123456" })
      else
        blocking = a:request_pin({ recipient = RCPT })
        op = b:request_pin_async({ recipient = RCPT })
      end
      local st = drive(op)
      same_table(blocking, st, what)
      a:close()
      b:close()
      return blocking, st
    end

    it("HTTP statuses, 429 with and without Retry-After, a redirect", function()
      for _, fault in ipairs{ "status-400", "status-401", "status-404", "status-500", "status-502", "status-503",
                              "status-418", "status-204", "retry-after-7", "ratelimit", "redirect" } do
        parity(fault, { base_url = sb.url_for(fault) }, "request")
      end
      for _, fault in ipairs{ "status-400", "status-500", "retry-after-3" } do
        parity(fault .. " (verify)", { base_url = sb.url_for(fault) }, "verify")
      end
      local _, st = parity("retry-after-7", { base_url = sb.url_for("retry-after-7") }, "request")
      assert.equal(7, st.retry_after)
      assert.is_true(st.retryable)
    end)

    it("a wrong token, an unknown user_key, a wrong PIN", function()
      parity("wrong token", { access_token = "WRONG" }, "request")
      parity("unknown user_key", { user_key = "NOBODY" }, "request")
      parity("no PIN pending", {}, "verify")
    end)

    it("unreadable, truncated, oversized answers, a dropped connection", function()
      for _, fault in ipairs{ "notjson", "empty", "badjson", "big", "cut", "badlen", "garbage", "drop" } do
        local _, st = parity(fault, { base_url = sb.url_for(fault) }, "request")
        assert.is_false(st.retryable, fault)
      end
      parity("badlen (verify)", { base_url = sb.url_for("badlen") }, "verify")
      parity("drop (verify)", { base_url = sb.url_for("drop") }, "verify")
    end)

    it("a hung gateway with a short timeout, and an answer dripping past it", function()
      local _, st = parity("hang", { base_url = sb.url_for("hang"), timeout = 0.5 }, "request")
      assert.equal("timeout", st.error)
      assert.is_true(st.elapsed >= 0.45 and st.elapsed < 2, tostring(st.elapsed))
      _, st = parity("drip", { base_url = sb.url_for("drip"), timeout = 0.7 }, "verify")
      assert.equal("timeout", st.error)
    end)

    it("a closed port, a connect that times out, an unresolvable host", function()
      local _, st = parity("closed port", { base_url = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/" }, "request")
      assert.equal("connect_failed", st.error)
      local port, close = util.full_backlog_port()
      finally(close)
      _, st = parity("connect timeout", { base_url = "http://127.0.0.1:" .. port .. "/API/v1.0/REST/", connect_timeout = 0.4 }, "request")
      assert.equal("timeout", st.error)
      assert.is_true(st.retryable)
      _, st = parity("unresolvable", { base_url = "https://" .. ("a"):rep(64) .. ".invalid/API/v1.0/REST/" }, "request")
      assert.equal("resolve_failed", st.error)
    end)

    it("TLS: success, and every refusal", function()
      local _, st = parity("tls ok", { base_url = sb.tls_urls.tls, cainfo = sb.ca_file }, "request")
      assert.is_true(st.ok, st.message)
      for what, o in pairs{
        ["no CA"] = { base_url = sb.tls_urls.tls },
        ["self-signed"] = { base_url = sb.tls_urls.untrusted, cainfo = sb.ca_file },
        ["wrong host"] = { base_url = sb.tls_urls.wrong_host, cainfo = sb.ca_file },
        ["expired"] = { base_url = sb.tls_urls.expired, cainfo = sb.ca_file },
        ["plain HTTP port"] = { base_url = "https://127.0.0.1:" .. sb.port .. "/API/v1.0/REST/", cainfo = sb.ca_file },
      } do
        _, st = parity(what, o, "request")
        assert.equal("tls_failed", st.error, what)
        assert.is_true(st.retryable, what)
      end
    end)

    it("login refusals and failures inside the op", function()
      parity("wrong password", { login = true, password = "wrong" }, "request")
      parity("login garbage", { login = true, base_url = sb.url_for("login-garbage") }, "request")
      parity("login badlen", { login = true, base_url = sb.url_for("badlen") }, "request")
      parity("login closed port", { login = true,
        base_url = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/" }, "verify")
      local _, st = parity("login hang", { login = true, base_url = sb.url_for("hang"), timeout = 0.5 }, "request")
      assert.equal("timeout", st.error)
      assert.is_true(st.retryable) -- only the login went out
      assert.equal(0, recorded("2fa/request"))
    end)

    it("bad fields: the op is born done with the invalid_request table, nothing sent", function()
      local cases = {
        { "request", { recipient = "12" } },
        { "request", { recipient = RCPT, expiry = 0 / 0 } },
        { "request", { recipient = RCPT, sendername = "x" } },
        { "request", { recipient = RCPT, messageBody = ("x"):rep(2000) } },
        { "request", {} },
        { "verify", { recipient = RCPT, pin = ("9"):rep(100) } },
        { "verify", { recipient = RCPT } },
        { "verify", { recipient = RCPT, pin = 123456 } },
      }
      local c = client()
      for i, case in ipairs(cases) do
        local op = case[1] == "verify" and c:verify_pin_async(case[2]) or c:request_pin_async(case[2])
        assert.is_true(op:done(), "case " .. i)
        local st = op:poll()
        assert.equal("invalid_request", st.error, "case " .. i)
        assert.is_string(st.field, "case " .. i)
        assert.equal(st, op:poll())
        assert.equal(0, op:timeout())
        local blocking = case[1] == "verify" and c:verify_pin(case[2]) or c:request_pin(case[2])
        same_table(blocking, st, "case " .. i)
      end
      assert.equal(0, recorded())
    end)
  end)

  describe("poll never blocks", function()
    -- Polls every millisecond and keeps the longest poll.
    local function busy_poll(op)
      local longest, polls, st = 0, 0, nil
      repeat
        local t0 = now()
        st = op:poll()
        local took = now() - t0
        polls = polls + 1
        if took > longest then longest = took end
        if not st then socket.sleep(0.001) end
      until st
      return st, longest, polls
    end

    it("while the gateway stalls for 1.5 s, until the timeout", function()
      local c = client{ base_url = sb.url_for("hang"), timeout = 1.5 }
      local st, longest, polls = busy_poll(c:request_pin_async{ recipient = RCPT })
      assert.equal("timeout", st.error)
      assert.is_true(polls > 300, tostring(polls))
      assert.is_true(longest < 0.05, ("the longest poll took %.1f ms"):format(longest * 1000))
    end)

    it("through a slow login and a slow PIN request", function()
      local c = gw.login_client{ base_url = sb.url_for("slow-700") }
      local st, longest, polls = busy_poll(c:request_pin_async{ recipient = RCPT })
      assert.is_true(st.ok, st.message)
      assert.is_true(st.elapsed >= 1.4, tostring(st.elapsed))
      assert.is_true(polls > 300, tostring(polls))
      assert.is_true(longest < 0.05, ("the longest poll took %.1f ms"):format(longest * 1000))
      assert.equal("login 2fa/request", gw.paths())
    end)
  end)

  describe("cancel", function()
    local function cancelled(st, retryable, what)
      assert.is_false(st.ok, what)
      assert.equal("cancelled", st.error, what)
      assert.equal(retryable, st.retryable, what)
      assert.is_string(st.message, what)
    end

    it("right after the start: retryable, and nothing reaches the gateway", function()
      local c = client()
      local op = c:request_pin_async{ recipient = RCPT }
      local st = op:cancel()
      cancelled(st, true, "right after start")
      assert.matches("before the request was sent", st.message)
      assert.is_true(op:done())
      assert.equal(st, op:poll())
      assert.equal(st, op:cancel())
      socket.sleep(0.3)
      assert.equal(0, recorded())
      assert.is_true(drive(c:request_pin_async{ recipient = RCPT }).ok, "the client works on")
    end)

    it("before connect (a connect that never completes): retryable", function()
      local port, close = util.full_backlog_port()
      finally(close)
      local c = client{ base_url = "http://127.0.0.1:" .. port .. "/API/v1.0/REST/" }
      local op = c:request_pin_async{ recipient = RCPT }
      assert.is_nil(op:wait(0.3))
      cancelled(op:cancel(), true, "before connect")
    end)

    it("connected, during the TLS handshake: retryable (no byte of the request was written)", function()
      local server = assert(socket.bind("127.0.0.1", 0)) -- listens, never accepts nor answers
      finally(function() server:close() end)
      local _, port = server:getsockname()
      local c = client{ base_url = "https://127.0.0.1:" .. port .. "/API/v1.0/REST/", cainfo = sb.ca_file }
      local op = c:request_pin_async{ recipient = RCPT }
      assert.is_nil(op:wait(0.3))
      assert.equal(1, util.open_sockets_to(tonumber(port)), "the client should be connected")
      cancelled(op:cancel(), true, "during TLS handshake")
    end)

    it("during the send (the server has read the request line): not retryable", function()
      local l = first_line_listener()
      finally(l.close)
      local c = client{ base_url = "http://127.0.0.1:" .. l.port .. "/API/v1.0/REST/" }
      local op = c:request_pin_async{ recipient = RCPT }
      poll_until(l.step, { op }, "the listener never got the request line")
      assert.matches("^POST /API/v1%.0/REST/2fa/request HTTP/1%.1", l.line)
      local st = op:cancel()
      cancelled(st, false, "during send")
      assert.matches("may have acted", st.message)
    end)

    it("after the send (the gateway read it and stalls): not retryable, never resent", function()
      local c = client{ base_url = sb.url_for("hang"), timeout = 10 }
      local op = c:request_pin_async{ recipient = RCPT }
      poll_until(function() return recorded("2fa/request") == 1 end, { op }, "the request should reach the gateway")
      cancelled(op:cancel(), false, "after send")
      assert.equal(1, recorded("2fa/request"))
    end)

    it("during a lazy login: retryable, the PIN request never went out", function()
      local c = gw.login_client{ base_url = sb.url_for("hang"), timeout = 10 }
      local op = c:request_pin_async{ recipient = RCPT }
      poll_until(function() return recorded("login") == 1 end, { op }, "the login should reach the gateway")
      cancelled(op:cancel(), true, "during login")
      assert.equal(0, recorded("2fa/request"))
    end)
  end)

  describe("many ops on one client", function()
    it("16 in flight against a slow gateway all finish, over at most 4 connections", function()
      local c = client{ base_url = sb.url_for("slow-400"), timeout = 10 }
      local list = start_many(c, 16)
      for i = 1, 16 do assert.is_false(list[i]:done(), "op " .. i) end
      local t0 = now()
      local out = drive_all(list)
      local took = now() - t0
      for i = 1, 16 do assert.is_true(out[i].ok, "op " .. i .. ": " .. tostring(out[i].message)) end
      assert.equal(16, recorded("2fa/request"))
      local conns = gw.connections("2fa/request")
      assert.is_true(conns >= 1 and conns <= 4, "connections: " .. conns)
      -- 4 at a time: 4 rounds of 0.4 s, not 16, and not one
      assert.is_true(took >= 1.5 and took < 4, tostring(took))
      for i = 1, 16 do assert.is_string(sb:last_pin(ops.number(i)), "no SMS for op " .. i) end
    end)

    -- Ops past the 4 connections wait in the client's own queue (src/http.c), not in libcurl's:
    -- their timeout still runs from their start, and one that runs out there never sent a byte.
    it("ops queued behind 4 stalled ones time out on their own clock, retryable, nothing sent", function()
      local c = client{ base_url = sb.url_for("slow-3000"), timeout = 1 }
      local list = start_many(c, 6)
      local out = drive_all(list)
      assert.equal(6, #out)
      assert_sent_queued(out, 4, 2, function(st, i)
        assert.equal("timeout", st.error, "op " .. i .. ": " .. tostring(st.message))
        assert.is_true(st.elapsed >= 0.9 and st.elapsed < 1.8, "op " .. i .. " elapsed " .. st.elapsed)
        if st.retryable then assert.matches("before the request was sent", st.message) end
      end)
      assert.equal(4, recorded("2fa/request"))
    end)

    it("an op that waited in the queue gets what is left of its timeout once it is let in", function()
      local c = client{ base_url = sb.url_for("slow-3000"), timeout = 1.2 }
      local first = start_many(c, 4)
      local t0 = now()
      while now() - t0 < 0.5 do -- the four go out and stall
        for _, op in ipairs(first) do assert.is_nil(op:poll()) end
        socket.sleep(0.01)
      end
      local late = c:request_pin_async{ recipient = ops.number(5) }
      local list = { first[1], first[2], first[3], first[4], late }
      local out = drive_all(list)
      for i = 1, 4 do assert.equal("timeout", out[i].error, "op " .. i) end
      -- let in when the first four timed out (at 1.2 s), sent, and timed out 1.2 s after its own start
      assert.equal("timeout", out[5].error, out[5].message)
      assert.is_false(out[5].retryable, out[5].message)
      assert.is_true(out[5].elapsed >= 1.1 and out[5].elapsed < 1.6, "late op elapsed " .. out[5].elapsed)
      assert.equal(5, recorded("2fa/request"))
    end)

    it("a queued op cancelled is retryable and never sent; the others go on", function()
      local c = client{ base_url = sb.url_for("slow-400"), timeout = 10 }
      local list = start_many(c, 5)
      poll_until(function() return recorded("2fa/request") == 4 end, list, "4 requests should reach the gateway")
      local st = list[5]:cancel()
      assert.equal("cancelled", st.error)
      assert.is_true(st.retryable)
      local out = drive_all{ list[1], list[2], list[3], list[4] }
      for i = 1, 4 do assert.is_true(out[i].ok, "op " .. i .. ": " .. tostring(out[i].message)) end
      assert.equal(4, recorded("2fa/request"))
    end)

    it("keep min_interval across them: the second op to one number is cooldown, one request goes out", function()
      -- numbers of these tests' own: a min_interval claim may outlive its client (a process-wide guard)
      local rcpt, other_rcpt = ops.number(600), ops.number(601)
      local c = client{ min_interval = 60, base_url = sb.url_for("slow-200") }
      local first = c:request_pin_async{ recipient = rcpt }
      local second = c:request_pin_async{ recipient = rcpt }
      assert.is_true(second:done())
      local st2 = second:poll()
      assert.equal("cooldown", st2.error)
      assert.is_number(st2.retry_after)
      assert.is_true(st2.retry_after > 0 and st2.retry_after <= 60)
      local other = c:request_pin_async{ recipient = other_rcpt } -- another number is not held up
      local out = drive_all{ first, other }
      assert.is_true(out[1].ok and out[2].ok)
      assert.equal(2, recorded("2fa/request"))
      local to_rcpt = 0
      for _, r in ipairs(gw.requests("2fa/request")) do
        if r.body:find(rcpt, 1, true) then to_rcpt = to_rcpt + 1 end
      end
      assert.equal(1, to_rcpt)
      local again = c:request_pin{ recipient = rcpt }
      assert.equal("cooldown", again.error)
      assert.equal(2, recorded("2fa/request"))
    end)

    it("give the number back when the op certainly sent nothing (cancelled at once)", function()
      local c = client{ min_interval = 60 }
      local gone = c:request_pin_async{ recipient = ops.number(602) }:cancel()
      assert.is_true(gone.retryable)
      local st = drive(c:request_pin_async{ recipient = ops.number(602) })
      assert.is_true(st.ok, st.message)
    end)
  end)

  describe("lifetime", function()
    it("client:close() cancels the ops in flight: sent ones not retryable, queued ones retryable", function()
      local c = client{ base_url = sb.url_for("slow-2000"), timeout = 10 }
      local list = start_many(c, 6)
      poll_until(function() return recorded("2fa/request") == 4 end, list, "4 requests should reach the gateway")
      c:close()
      local tables = {}
      for i, op in ipairs(list) do
        assert.is_true(op:done(), "op " .. i)
        tables[i] = op:poll()
      end
      assert_sent_queued(tables, 4, 2, function(st, i)
        assert.equal("cancelled", st.error, "op " .. i)
        assert.equal(0, list[i]:timeout())
        assert.equal(st, list[i]:wait())
      end)
      assert.has_error(function() c:request_pin_async{ recipient = RCPT } end)
      assert.has_error(function() c:verify_pin_async{ recipient = RCPT, pin = "123456" } end)
      assert.equal(4, recorded("2fa/request"))
    end)

    it("an op that is collected while in flight is cancelled, and the client works on", function()
      local c = client{ base_url = sb.url_for("slow-1500"), timeout = 5 }
      do
        local list = start_many(c, 4)
        poll_until(function() return recorded("2fa/request") == 4 end, list, "4 requests should reach the gateway")
        assert.equal(4, util.open_sockets_to(sb.port))
      end
      collectgarbage()
      collectgarbage()
      assert.equal(0, util.open_sockets_to(sb.port), "the collected ops still hold their connections")
      -- if the 4 collected transfers still held the client's 4 connections, this one would queue
      local t0 = now()
      local st = drive(c:request_pin_async{ recipient = ops.number(9) })
      assert.is_true(st.ok, st.message)
      assert.is_true(now() - t0 < 2.5, tostring(now() - t0))
    end)

    it("an op that is referenced survives collectgarbage() in flight", function()
      local c = client{ base_url = sb.url_for("slow-300") }
      local op = c:request_pin_async{ recipient = RCPT }
      op:poll()
      collectgarbage()
      collectgarbage()
      assert.is_true(drive(op).ok)
    end)

    it("an op keeps its client alive", function()
      local weak = setmetatable({}, { __mode = "v" })
      local op
      do
        local c = client{ base_url = sb.url_for("slow-300") }
        weak.c = c
        op = c:request_pin_async{ recipient = RCPT }
      end
      collectgarbage()
      collectgarbage()
      assert.is_not_nil(weak.c, "the client was collected under its op")
      local st = drive(op)
      assert.is_true(st.ok, st.message)
      op = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak.c, "the client outlived its last op")
    end)
  end)

  describe("misuse raises", function()
    it("a non-table argument, a closed client, a wrong self", function()
      local c = client()
      assert.has_error(function() c:request_pin_async() end)
      assert.has_error(function() c:request_pin_async(RCPT) end)
      assert.has_error(function() c:verify_pin_async(42) end)
      assert.has_error(function() c.request_pin_async({}, { recipient = RCPT }) end)
      assert.has_error(function() c.verify_pin_async(nil, { recipient = RCPT, pin = "1" }) end)
      local op = c:request_pin_async{ recipient = "bad" }
      for _, m in ipairs{ "poll", "wait", "done", "cancel", "pollfd", "events", "timeout" } do
        assert.has_error(function() op[m]({}) end, nil, m)
        assert.has_error(function() op[m](c) end, nil, m)
      end
      c:close()
      assert.has_error(function() c:request_pin_async{ recipient = RCPT } end)
      assert.equal("invalid_request", op:poll().error, "an op born done stays readable after close")
      assert.equal(0, recorded())
    end)
  end)

  describe("login inside the op", function()
    it("logs in lazily, and renews once after the session expires", function()
      local c = gw.login_client()
      assert.is_true(drive(c:request_pin_async{ recipient = RCPT }).ok)
      assert.equal("login 2fa/request", gw.paths())
      sb:expire_sessions()
      local st = drive(c:request_pin_async{ recipient = RCPT })
      assert.is_true(st.ok, st.message)
      assert.equal("login 2fa/request 2fa/request login 2fa/request", gw.paths())
      sb:expire_sessions()
      st = drive(c:verify_pin_async{ recipient = RCPT, pin = sb:last_pin(RCPT) })
      assert.is_true(st.ok, st.message)
      assert.equal(3, recorded("login"))
    end)

    it("10 concurrent ops needing a login make 1 login, and after an expiry 1 renewal", function()
      local c = gw.login_client{ base_url = sb.url_for("slow-200") }
      local list = start_many(c, 10)
      for i, st in ipairs(drive_all(list)) do assert.is_true(st.ok, "op " .. i .. ": " .. tostring(st.message)) end
      assert.equal(1, recorded("login"))
      assert.equal(10, recorded("2fa/request"))
      sb:expire_sessions()
      list = {}
      for i = 1, 10 do list[i] = c:verify_pin_async{ recipient = ops.number(i), pin = sb:last_pin(ops.number(i)) } end
      for i, st in ipairs(drive_all(list)) do assert.is_true(st.ok, "verify " .. i .. ": " .. tostring(st.message)) end
      assert.equal(2, recorded("login"))
    end)

    it("a login refused for many waiting ops refuses them all, with one login", function()
      local c = gw.login_client{ password = "wrong" }
      local list = start_many(c, 5)
      for i, st in ipairs(drive_all(list)) do assert.equal("login_failed", st.error, "op " .. i) end
      assert.equal("login", gw.paths())
    end)
  end)

  describe("descriptors", function()
    it("are not leaked by 10 000 ops (finished, cancelled, born done)", function()
      -- a client used once and closed first: whatever the process sets up once is counted in base
      local warm = client()
      assert.is_true(drive(warm:request_pin_async{ recipient = RCPT }).ok)
      warm:close()
      local base = open_fds()
      local c = client()
      local n, most = 0, 0
      local kinds = { finished = 0, cancelled = 0, born_done = 0 }
      while n < 10000 do
        local list = {}
        for i = 1, 8 do list[i] = c:verify_pin_async{ recipient = ops.number(i), pin = "123456" } end
        for _ = 1, 4 do
          c:request_pin_async{ recipient = ops.number(100) }:cancel()
          kinds.cancelled = kinds.cancelled + 1
        end
        for _ = 1, 4 do
          assert.is_true(c:request_pin_async{ recipient = "bad" }:done())
          kinds.born_done = kinds.born_done + 1
        end
        for _, st in ipairs(drive_all(list)) do assert.equal("wrong_pin", st.error) end
        kinds.finished = kinds.finished + #list
        n = n + 16
        if n % 1600 == 0 then
          most = math.max(most, open_fds())
          assert.is_true(util.open_sockets_to(sb.port) <= 4, "more than 4 connections established")
        end
      end
      -- with the client: its epoll descriptor, libcurl's wakeup socket pair, at most 4 connections
      -- in use and the odd one the gateway closed (nginx's keepalive_requests) not yet dropped
      assert.is_true(most <= base + 12, ("descriptors: %d before the client, up to %d with it"):format(base, most))
      c:close()
      local after = open_fds()
      assert.equal(base, after, ("descriptors: %d before, %d after %d ops and close"):format(base, after, n))
      assert.same({ finished = 5000, cancelled = 2500, born_done = 2500 }, kinds)
    end)
  end)
end)
