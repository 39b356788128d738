-- twofactor.lua — an application's second login step, as a user of smsend writes it: start() texts
-- a PIN to the user's phone, finish() checks the PIN the user typed. Tested in ../spec against the
-- sandbox (require "smsend.sandbox"), never against the real gateway.
local smsend = require "smsend"

local M = {}

-- The error codes after which the gateway (or the module) definitely sent nothing and will not:
-- tell the user; anything else not retryable may have texted a PIN, so the app must not resend.
local REFUSED = { invalid_request = true, bad_request = true, unauthorized = true, not_found = true,
                  login_failed = true, cooldown = true, country_not_allowed = true }

-- new(options) → a 2FA service over one smsend client (options: those of smsend.new).
function M.new(options)
  local client = assert(smsend.new(options))
  local self = {}

  -- start(phone) → true, or nil and "retry" (nothing was sent: offer to try again), "refused"
  -- (the number or the account was refused) or "unknown" (a PIN may have been sent: ask the user
  -- to wait for it rather than sending another).
  function self.start(phone)
    local recipient, why = smsend.normalize_recipient(phone)
    if not recipient then return nil, "refused", why end
    local st = client:request_pin{ recipient = recipient }
    if st.ok then return true end
    if st.retryable or st.error == "rate_limited" then return nil, "retry", st.message end -- a 429 sent nothing
    if REFUSED[st.error] then return nil, "refused", st.message end
    return nil, "unknown", st.message
  end

  -- finish(phone, pin) → true; false and the tries left for a wrong PIN; nil and the error code.
  function self.finish(phone, pin)
    local recipient = smsend.normalize_recipient(phone)
    local st = client:verify_pin{ recipient = recipient or phone, pin = pin }
    if st.ok then return true end
    if st.error == "wrong_pin" then return false, st.tries_remaining end
    return nil, st.error
  end

  function self.close() client:close() end
  return self
end

return M
