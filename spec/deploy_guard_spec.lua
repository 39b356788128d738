-- deploy_guard_spec.lua — the guard's promises where more than one Lua state meets: two Lua
-- processes sharing a real redis-server (and, for contrast, each with its own process store), the
-- claim given back only when nothing was sent, pins_per_window, allowed_countries, guard_fail with
-- Redis stopped mid-test, and store keys without digits of the number (walked with SCAN). Every
-- count is taken on the sandbox gateway's side.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
local deploy = require "spec.support.deploy"

local UK, TOK = helpers.DEFAULT_USER.user_key, helpers.DEFAULT_USER.access_token

-- Claims in the process store outlive clients and spec files (one busted process runs them all):
-- every test takes numbers of its own.
local serial = 0
local function number()
  serial = serial + 1
  return ("+3934786%05d"):format(serial)
end

-- Two processes sharing one store, each sending `PER_CHILD` requests for one number at once:
-- half pollable (all in flight together), half blocking through the module-level client.
local PER_CHILD = 40
local CHILD = [[
local smsend = require "smsend"
local o = { user_key = os.getenv("UK"), access_token = os.getenv("TOK"), base_url = os.getenv("BASE"),
            guard = os.getenv("GUARD"), min_interval = 60, timeout = 10 }
local rcpt = os.getenv("RCPT")
local n, half = { ok = 0, cooldown = 0, other = 0 }, math.floor(tonumber(os.getenv("N")) / 2)
local function count(st)
  if st.ok then n.ok = n.ok + 1
  elseif st.error == "cooldown" and st.retry_after and st.retry_after >= 1 and st.retry_after <= 60 then
    n.cooldown = n.cooldown + 1
  else
    n.other = n.other + 1
    io.stderr:write(tostring(st.error), " ", tostring(st.message), "\n")
  end
end
local c = assert(smsend.new(o))
local t0 = socket.gettime()
local ops = {}
for i = 1, half do ops[i] = c:request_pin_async{ recipient = rcpt } end
for i = 1, half do count(ops[i]:wait(15)) end
o.recipient = rcpt
for _ = 1, half do count(smsend.request_pin(o)) end
io.write(("from=%.3f to=%.3f ok=%d cooldown=%d other=%d"):format(t0, socket.gettime(), n.ok, n.cooldown, n.other))
]]

describe("the guard across processes", function()
  local parts, sb, store = deploy.parts{ redis_db = 1 }, nil, nil

  before_each(function()
    sb, store = parts.sb, parts.store
    sb:reset()
  end)

  -- runs two children at once against `guard`; → total ok, total cooldown
  local function two_processes(guard, rcpt)
    -- the PIN that goes out is held 300 ms at the gateway: the other process asks meanwhile
    local env = { UK = UK, TOK = TOK, BASE = sb.url_for("slow-300"), GUARD = guard, RCPT = rcpt,
                  N = tostring(PER_CHILD) }
    local kids = deploy.spawn_all(CHILD, { env, env })
    local ok, cooldown, last_from, first_to = 0, 0, 0, math.huge
    for _, k in ipairs(kids) do
      local out, exited = k:wait()
      assert.is_true(exited, out)
      local from, to, a, b, other = out:match("from=(%S+) to=(%S+) ok=(%d+) cooldown=(%d+) other=(%d+)$")
      assert.is_truthy(a, out)
      assert.are.equal("0", other, out)
      ok, cooldown = ok + tonumber(a), cooldown + tonumber(b)
      last_from, first_to = math.max(last_from, tonumber(from)), math.min(first_to, tonumber(to))
    end
    assert.is_true(last_from < first_to, "the two processes did not run at the same time")
    return ok, cooldown
  end

  it("lets exactly one of 2 Lua processes sharing a Redis reach the gateway", function()
    local rcpt = number()
    local ok, cooldown = two_processes(store.url, rcpt)
    assert.are.equal(1, ok)
    assert.are.equal(2 * PER_CHILD - 1, cooldown)
    assert.are.equal(1, deploy.sent(sb))
    -- one claim, expiring, and no digits of the number in its name
    local keys = store:scan("smsend:*")
    assert.are.same({ smsend.guard_key(rcpt, { user_key = UK }) .. ":c" }, keys)
    local pttl = tonumber(store:cli("PTTL", keys[1])[1])
    assert.is_true(pttl > 55000 and pttl <= 60000, tostring(pttl))
    assert.is_nil(deploy.digit_run(keys[1], rcpt, 4), keys[1])
  end)

  it("lets each process send once with the process store (it is not shared across processes)", function()
    -- the contrast that shows the spec above can tell the stores apart
    local ok, cooldown = two_processes("process", number())
    assert.are.equal(2, ok)
    assert.are.equal(2 * PER_CHILD - 2, cooldown)
    assert.are.equal(2, deploy.sent(sb))
  end)
end)

-- The same promises in both stores: claims, release, windows and countries.
for _, kind in ipairs{ "redis", "process" } do
  describe("the guard in the " .. kind .. " store", function()
    local parts, sb, store, used = deploy.parts{ redis_db = kind == "redis" and 2 or nil }, nil, nil, nil

    before_each(function()
      sb, store = parts.sb, parts.store
      sb:reset()
      if store then store:cli("FLUSHDB") end
      used = {}
    end)

    local function guard() return kind == "redis" and store.url or "process" end

    local function fresh()
      local n = number()
      used[#used + 1] = n
      return n
    end

    local function opts(extra)
      return deploy.merge({ user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5, guard = guard() },
        extra)
    end

    local function client(extra) return assert(smsend.new(opts(extra))) end

    -- Redis only: every key is a claim of the scheme, expires, and holds no run of 4 digits of
    -- any number the test used (nor its value the subscriber number).
    local function check_keys()
      if not store then return end
      for _, k in ipairs(store:scan("*")) do
        assert.matches("^smsend:v1:%x+:[cw]$", k)
        local run, num = deploy.leak(k, used, 4)
        assert.is_nil(run, ("%s holds %s of %s"):format(k, tostring(run), tostring(num)))
        local value = store:cli("GET", k)[1] or ""
        assert.is_nil(deploy.leak(value, used, 9), k .. " = " .. value)
        assert.is_true(tonumber(store:cli("PTTL", k)[1]) > 0, k .. " has no expiry")
      end
    end

    local function key_of(rcpt, suffix)
      return smsend.guard_key(rcpt, { user_key = UK }) .. suffix
    end

    local function pttl(rcpt, suffix)
      return tonumber(store:cli("PTTL", key_of(rcpt, suffix))[1])
    end

    it("gives the claim back after connect_failed, before anything was sent", function()
      local rcpt = fresh()
      local dead = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/"
      local st = client{ base_url = dead, min_interval = 60 }:request_pin{ recipient = rcpt }
      assert.are.equal("connect_failed", st.error, st.message)
      assert.is_true(st.retryable)
      if store then assert.are.equal(-2, pttl(rcpt, ":c")) end -- no claim left behind
      -- released: the next request goes out
      st = client{ min_interval = 60 }:request_pin{ recipient = rcpt }
      assert.is_true(st.ok, st.message)
      assert.are.equal(1, deploy.sent(sb))
      if store then assert.is_true(pttl(rcpt, ":c") > 55000) end
      check_keys()
    end)

    it("keeps the claim after a timeout once the request was sent", function()
      local rcpt = fresh()
      -- the gateway takes the request and answers late (slow-2000) or never (hang)
      local fault = kind == "redis" and "slow-2000" or "hang"
      local st = client{ base_url = sb.url_for(fault), min_interval = 60, timeout = 0.5 }:request_pin{ recipient = rcpt }
      assert.are.equal("timeout", st.error, st.message)
      assert.is_false(st.retryable)
      assert.are.equal(1, deploy.sent(sb))
      st = client{ min_interval = 60 }:request_pin{ recipient = rcpt }
      assert.are.equal("cooldown", st.error, st.message)
      assert.is_false(st.retryable)
      assert.is_true(st.retry_after >= 59 and st.retry_after <= 60, tostring(st.retry_after))
      assert.are.equal(1, deploy.sent(sb)) -- nothing more went out
      if store then assert.is_true(pttl(rcpt, ":c") > 55000) end
      check_keys()
    end)

    it("sends pins_per_window PINs per window and refuses the next with retry_after", function()
      local rcpt = fresh()
      local c = client{ pins_per_window = 3, window = 600, min_interval = 0 }
      for i = 1, 3 do
        local st = c:request_pin{ recipient = rcpt }
        assert.is_true(st.ok, i .. ": " .. tostring(st.message))
      end
      local st = c:request_pin{ recipient = rcpt }
      assert.are.equal("cooldown", st.error, st.message)
      assert.is_false(st.retryable)
      assert.is_true(st.retry_after > 590 and st.retry_after <= 600, tostring(st.retry_after))
      -- another client (and the module level) counts in the same store
      st = smsend.request_pin(opts{ recipient = rcpt, pins_per_window = 3, window = 600 })
      assert.are.equal("cooldown", st.error, st.message)
      assert.are.equal(3, deploy.sent(sb))
      if store then
        -- the refusals did not count; the window key expires with the window
        assert.are.equal("3", store:cli("GET", key_of(rcpt, ":w"))[1])
        local t = pttl(rcpt, ":w")
        assert.is_true(t > 590000 and t <= 600000, tostring(t))
        assert.are.equal(-2, pttl(rcpt, ":c")) -- min_interval 0: no cooldown key
      end
      check_keys()
    end)

    it("refuses numbers outside allowed_countries, sending and claiming nothing", function()
      local us = "+1202555" .. ("%04d"):format(serial % 10000)
      local uk = (fresh():gsub("^%+39", "+44"))
      local fr = "+33612345678"
      used[#used + 1] = us
      used[#used + 1] = uk
      local c = client{ allowed_countries = "39,44", min_interval = 60 }
      local st = c:request_pin{ recipient = us }
      assert.are.equal("country_not_allowed", st.error, st.message)
      assert.are.equal("recipient", st.field)
      assert.is_false(st.ok)
      -- any spelling of the number is the same country
      st = c:request_pin{ recipient = "001" .. us:sub(3) }
      assert.are.equal("country_not_allowed", st.error, st.message)
      -- module level too
      st = smsend.request_pin(opts{ recipient = fr, allowed_countries = "39,44", min_interval = 60 })
      assert.are.equal("country_not_allowed", st.error, st.message)
      assert.are.equal("recipient", st.field)
      assert.are.equal(0, #sb:requests()) -- nothing reached the gateway
      if store then assert.are.same({}, store:scan("*")) end -- and nothing was claimed
      -- an allowed country goes out, and is claimed
      st = c:request_pin{ recipient = uk }
      assert.is_true(st.ok, st.message)
      assert.are.equal(1, deploy.sent(sb))
      -- the refusal took no claim: once allowed, the same number goes out
      st = client{ min_interval = 60 }:request_pin{ recipient = us }
      assert.is_true(st.ok, st.message)
      assert.are.equal(2, deploy.sent(sb))
      check_keys()
    end)
  end)
end

describe("guard_fail when Redis goes away mid-test", function()
  local parts = deploy.parts{ redis_db = 0 }

  it("refuses with guard_unavailable when closed, and sends and says so when open", function()
    local sb, store = parts.sb, parts.store
    local function opts(extra)
      return deploy.merge({ user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 2, connect_timeout = 1,
                            guard = store.url, min_interval = 60 }, extra)
    end
    local default = assert(smsend.new(opts()))
    local closed = assert(smsend.new(opts{ guard_fail = "closed" }))
    local open = assert(smsend.new(opts{ guard_fail = "open" }))
    -- all three claim in Redis while it runs (their connections are kept alive)
    for _, c in ipairs{ default, closed, open } do
      local st = c:request_pin{ recipient = number() }
      assert.is_true(st.ok, st.message)
      assert.is_nil(tostring(st.message):find("unguarded", 1, true), st.message)
    end
    assert.are.equal(3, deploy.sent(sb))
    assert.are.equal(3, #store:scan("smsend:*"))

    store:stop()
    assert.is_false(store:alive())
    for _, c in ipairs{ default, closed } do
      local st = c:request_pin{ recipient = number() }
      assert.are.equal("guard_unavailable", st.error, st.message)
      assert.is_true(st.retryable)
      assert.matches("nothing was sent", st.message, 1, true)
      assert.is_nil(st.message:find(store.password, 1, true), st.message)
    end
    local st = smsend.request_pin(opts{ recipient = number() }) -- module level: closed by default
    assert.are.equal("guard_unavailable", st.error, st.message)
    assert.are.equal(3, deploy.sent(sb)) -- nothing sent while the store was down

    st = open:request_pin{ recipient = number() }
    assert.is_true(st.ok, st.message)
    assert.matches("could not be reached", st.message, 1, true)
    assert.matches("sent unguarded", st.message, 1, true)
    assert.is_nil(st.message:find(store.password, 1, true), st.message)
    assert.are.equal(4, deploy.sent(sb))
  end)
end)
