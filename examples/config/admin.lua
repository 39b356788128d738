-- admin.lua — admin configuration of a game server, run once by the host program at startup.
--
-- The host runs this file in a small environment of its own (see run.lua): `require` that only
-- knows "smsend", `ask(prompt)` that reads a line from the operator's console, and `log(text)`.
-- The file declares which admin commands exist and a `guard(action, phone)` function; the host
-- calls guard before every command and runs the command only when guard returns exactly true.
-- Credentials never appear here: smsend.new{} reads them from the server's environment
-- (SMSEND_USER_KEY + SMSEND_ACCESS_TOKEN, or SMSEND_USERNAME + SMSEND_PASSWORD).
local smsend = require "smsend"

-- One client for the whole life of the server: it keeps its connection to the gateway open, and
-- min_interval makes it refuse a second SMS to the same phone within 60 seconds, so a repeated
-- command (a stuck key, a looping script, an attacker at the console) cannot flood an admin's
-- phone or spend the account's credit. The refusal comes back as error "cooldown".
local client = assert(smsend.new{ min_interval = 60, timeout = 10 })

-- dangerous = true: the command needs a PIN sent to the admin's phone.
admin_actions = {
  wipe_world   = { dangerous = true,  help = "delete the world save and generate a new world" },
  ban_player   = { dangerous = true,  help = "ban a player account" },
  list_players = { dangerous = false, help = "show who is online" },
}

local MAX_ATTEMPTS = 3

function guard(action, phone)
  local spec = admin_actions[action]
  if not spec then
    log("unknown admin action: " .. tostring(action))
    return false
  end
  if not spec.dangerous then return true end

  local recipient, why = smsend.normalize_recipient(tostring(phone or ""))
  if not recipient then
    log("no usable phone number for the admin: " .. why)
    return false
  end

  -- The SMS names the action: an admin who gets a code for something they did not start knows
  -- someone else is at the console, and must not read the code out to anyone.
  local sent = client:request_pin{
    recipient = recipient, senderName = "GameAdmin", expiry = 5,
    messageBody = "Code %PIN% confirms " .. action .. " on your game server. Do not share it.",
  }
  if not sent.ok then
    log(("cannot send the PIN (%s): %s"):format(sent.error, sent.message))
    return false
  end

  for attempt = 1, MAX_ATTEMPTS do
    local pin = ask("PIN sent by SMS to confirm " .. action .. ": ")
    if not pin or pin == "" then
      log("no PIN entered: " .. action .. " cancelled")
      return false
    end
    -- Only the outcome is logged, never the PIN: logs are read by more people than the phone's owner.
    local st = client:verify_pin{ recipient = recipient, pin = pin }
    if st.ok then
      log("PIN verified for " .. action)
      return true
    end
    local left = math.min(st.tries_remaining or 0, MAX_ATTEMPTS - attempt)
    if st.error ~= "wrong_pin" or left == 0 then
      log(("%s refused: %s"):format(action, st.message))
      return false
    end
    log(("wrong PIN, %d %s remaining"):format(left, left == 1 and "try" or "tries"))
  end
  return false
end
