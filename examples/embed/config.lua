-- config.lua — configuration script of the embedding host (host.c), run once at startup.
-- The host has linked smsend in and registered it (luaL_requiref, or package.preload on LuaJIT),
-- so this `require` finds it without searching package.cpath: no smsend.so is loaded. The host also provides ask(prompt),
-- which reads a line from the console, and calls guard(action, phone) before each admin command.
local smsend = require "smsend"

-- Created once, kept for the life of the server (one kept-alive connection). Credentials come from
-- the server's environment (SMSEND_USER_KEY + SMSEND_ACCESS_TOKEN, ...), never from this file.
-- min_interval = 60: a second PIN to the same phone within a minute is refused ("cooldown"), so a
-- repeated command cannot flood the admin's phone or drain the account's SMS credit.
local client = assert(smsend.new{ min_interval = 60, timeout = 10 })

-- Commands that need a PIN; anything else the host knows runs without one.
local needs_pin = { wipe_world = true, ban_player = true }

local function say(text) print("config: " .. text) end

function guard(action, phone)
  if not needs_pin[action] then return true end

  local recipient, why = smsend.normalize_recipient(phone)
  if not recipient then
    say("no usable phone number: " .. why)
    return false
  end
  local sent = client:request_pin{ recipient = recipient, senderName = "GameAdmin", expiry = 5,
                                   messageBody = "Code %PIN% confirms " .. action .. ". Do not share it." }
  if not sent.ok then
    say(("cannot send the PIN (%s): %s"):format(sent.error, sent.message))
    return false
  end

  for attempt = 1, 3 do
    local pin = ask("PIN to confirm " .. action .. ": ")
    if not pin or pin == "" then
      say("no PIN entered")
      return false
    end
    local st = client:verify_pin{ recipient = recipient, pin = pin }  -- the PIN is never printed
    if st.ok then
      say("PIN verified")
      return true
    end
    local left = math.min(st.tries_remaining or 0, 3 - attempt)
    if st.error ~= "wrong_pin" or left == 0 then
      say("refused: " .. st.message)
      return false
    end
    say(("wrong PIN, %d %s remaining"):format(left, left == 1 and "try" or "tries"))
  end
  return false
end
