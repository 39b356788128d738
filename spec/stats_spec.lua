-- stats_spec.lua — smsend.stats() and smsend.metrics() (src/stats.c, src/lstats.c): calls counted by
-- operation and outcome after known traffic against the sandbox, the Prometheus text agreeing with
-- the table, and no phone number or secret in either.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"

local UK, TOK = "SBXUSER", "SBXTOKEN"
local RCPT = "+393470006201" -- this spec's own: the guard's claims are process-wide

-- What changed between two smsend.stats() tables, as "op.outcome" = n (non-zero only).
local function delta(a, b)
  local d = {}
  for op, outcomes in pairs(b.calls) do
    for outcome, n in pairs(outcomes) do
      if n ~= a.calls[op][outcome] then d[op .. "." .. outcome] = n - a.calls[op][outcome] end
    end
  end
  for _, k in ipairs{ "cooldown_refusals", "logins", "renewals", "connections" } do
    if b[k] ~= a[k] then d[k] = b[k] - a[k] end
  end
  return d
end

describe("smsend.stats and smsend.metrics", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })

  it("count every call by operation and outcome", function()
    local c = assert(smsend.new{ user_key = UK, access_token = TOK, base_url = sb.base_url, min_interval = 60 })
    local before = smsend.stats()
    assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    assert.equal("cooldown", c:request_pin{ recipient = RCPT }.error)
    assert.equal("invalid_request", c:request_pin{ recipient = "+0123456789" }.error)
    assert.equal("wrong_pin", c:verify_pin{ recipient = RCPT, pin = "000000" }.error)
    assert.equal("invalid_request", c:login().error) -- no username/password
    assert.is_true(c:check_session().ok)
    assert.equal("invalid_request", smsend.request_pin{ recipient = RCPT }.error) -- no credentials
    assert.equal("invalid_request", smsend.verify_pin{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                                                       recipient = RCPT, bogus = 1 }.error)
    local d = delta(before, smsend.stats())
    d.connections = nil -- whether a kept-alive connection of the process's pool was free: not this test's
    assert.same({
      ["request_pin.ok"] = 1, ["request_pin.cooldown"] = 1, ["request_pin.invalid_request"] = 2,
      ["verify_pin.wrong_pin"] = 1, ["verify_pin.invalid_request"] = 1,
      ["login.invalid_request"] = 1, ["check_session.ok"] = 1, cooldown_refusals = 1,
    }, d)
    c:close()
  end)

  it("count logins, renewals, connections and gateway latency", function()
    collectgarbage() -- no session of an earlier test is still held
    collectgarbage()
    local other = helpers.start_sandbox{ tls = false } -- a gateway no connection of the pool goes to
    finally(function() helpers.stop_sandbox(other) end)
    local u = helpers.DEFAULT_USER
    local c = assert(smsend.new{ username = u.username, password = u.password, base_url = other.base_url })
    local before = smsend.stats()
    assert.is_true(c:request_pin{ recipient = "+393470006202" }.ok)   -- login, request
    other:expire_sessions()
    assert.is_true(c:request_pin{ recipient = "+393470006203" }.ok)   -- 401, login, request
    local after = smsend.stats()
    local d = delta(before, after)
    assert.equal(2, d.logins)
    assert.equal(1, d.renewals)
    assert.equal(3, d.connections) -- each login on a connection of its own, the calls on one kept alive
    assert.equal(5, after.gateway_seconds.count - before.gateway_seconds.count)
    assert.is_true(after.gateway_seconds.sum > before.gateway_seconds.sum)
    -- pollable ops count like the blocking calls
    local op = c:request_pin_async{ recipient = "+393470006204" }
    assert.is_true(op:wait(5).ok)
    assert.equal(1, delta(after, smsend.stats())["request_pin.ok"])
    c:close()
  end)

  it("give every operation, outcome and counter, with cumulative latency buckets", function()
    local s = smsend.stats()
    for _, op in ipairs{ "request_pin", "verify_pin", "login", "check_session" } do
      for _, e in ipairs(smsend._internal.errors()) do assert.is_number(s.calls[op][e.name], op .. "." .. e.name) end
      assert.is_number(s.calls[op].ok)
    end
    for _, k in ipairs{ "logins", "renewals", "cooldown_refusals", "connections" } do assert.is_number(s[k], k) end
    local g = s.gateway_seconds
    assert.is_number(g.count)
    assert.is_number(g.sum)
    assert.equal(12, #g.buckets)
    assert.equal(math.huge, g.buckets[12].le)
    assert.equal(g.count, g.buckets[12].count)
    for i = 2, #g.buckets do
      assert.is_true(g.buckets[i].le > g.buckets[i - 1].le)
      assert.is_true(g.buckets[i].count >= g.buckets[i - 1].count)
    end
  end)

  it("render the same counters as Prometheus text, without a number or a secret", function()
    local c = assert(smsend.new{ user_key = UK, access_token = TOK, base_url = sb.base_url })
    assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    c:close()
    local text, s = smsend.metrics(), smsend.stats()
    assert.equal("\n", text:sub(-1))
    local seen = {}
    for line in text:gmatch("([^\n]*)\n") do
      if line:sub(1, 1) == "#" then
        assert.truthy(line:match("^# HELP smsend_[%w_]+ .+$") or line:match("^# TYPE smsend_[%w_]+ %a+$"), line)
      else
        local name, labels, value = line:match("^(smsend_[%w_]+)(%b{}) (%S+)$")
        if not name then
          name, value = line:match("^(smsend_[%w_]+) (%S+)$")
        end
        assert.truthy(name and tonumber(value), line)
        seen[name .. (labels or "")] = tonumber(value)
      end
    end
    assert.equal(s.calls.request_pin.ok, seen['smsend_calls_total{op="request_pin",outcome="ok"}'])
    assert.equal(s.calls.verify_pin.wrong_pin, seen['smsend_calls_total{op="verify_pin",outcome="wrong_pin"}'])
    assert.equal(s.logins, seen.smsend_logins_total)
    assert.equal(s.cooldown_refusals, seen.smsend_cooldown_refusals_total)
    assert.equal(s.gateway_seconds.count, seen.smsend_gateway_seconds_count)
    assert.equal(s.gateway_seconds.count, seen['smsend_gateway_seconds_bucket{le="+Inf"}'])
    assert.is_nil(text:find(RCPT:sub(2), 1, true))
    assert.is_nil(text:find(RCPT:sub(-7), 1, true))
    assert.is_nil(text:find(TOK, 1, true))
    assert.is_nil(text:find(UK, 1, true))
  end)
end)
