-- twofactor_spec.lua — a user's busted spec for their own 2FA login step (src/twofactor.lua),
-- driving it against a local sandbox gateway: run `busted` in examples/testing.
local sandbox = require "smsend.sandbox"
local twofactor = require "twofactor"

local PHONE = "+39 347 123 4567" -- as the user typed it; the sandbox finds it in any spelling

describe("two-factor login", function()
  local sb, tf

  setup(function()
    sb = sandbox.start{ tls = true }             -- HTTPS on a free loopback port, its own test CA
    tf = twofactor.new(sb:options("password"))   -- base_url, cainfo, username, password
  end)

  teardown(function()
    tf.close()
    sb:stop()
  end)

  it("texts a PIN and accepts it", function()
    assert.is_true(tf.start(PHONE))
    local pin = sb:last_pin(PHONE)
    assert.matches("^%d%d%d%d%d%d$", pin)
    assert.is_true(tf.finish(PHONE, pin))
  end)

  it("refuses a wrong PIN and says how many tries are left", function()
    assert.is_true(tf.start(PHONE))
    local wrong = sb:last_pin("0039 347 123 4567") == "000000" and "111111" or "000000"
    assert.same({ false, 2 }, { tf.finish(PHONE, wrong) })
  end)

  it("does not resend when the connection drops after the request went out", function()
    assert.is_true(tf.start(PHONE))
    local before = sb:last_pin(PHONE)
    sb:fault_next("drop")                         -- the next request is read, then not answered
    local ok, why = tf.start(PHONE)
    assert.is_nil(ok)
    assert.equal("unknown", why)                  -- tell the user to wait for the SMS
    assert.equal(before, sb:last_pin(PHONE))      -- the dropped request sent nothing new
  end)

  it("offers to retry when the gateway is rate limiting", function()
    sb:fault_next("ratelimit")
    assert.equal("retry", select(2, tf.start(PHONE)))
    assert.is_true(tf.start(PHONE))               -- and the same client works right after
  end)

  it("logs in again when the session has expired", function()
    assert.is_true(tf.start(PHONE))
    sb:expire_sessions()
    assert.is_true(tf.start(PHONE))               -- 401, one new login, the request repeated
    assert.is_true(tf.finish(PHONE, sb:last_pin(PHONE)))
  end)
end)
