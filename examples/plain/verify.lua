-- verify.lua — confirm a phone number with an SMS PIN, from a plain Lua 5.4 script.
--
--   export SMSEND_USER_KEY=... SMSEND_ACCESS_TOKEN=...    # or SMSEND_USERNAME + SMSEND_PASSWORD
--   lua5.4 examples/plain/verify.lua "+39 347 123 4567"
--
-- Requests a PIN for the number, asks for it on the terminal, verifies it, and allows up to three
-- attempts (fewer if the gateway voids the PIN earlier). Exit status: 0 verified, 1 not verified
-- (or the PIN could not be sent), 2 usage.
-- Against the bundled sandbox: start `bin/smsend-sandbox`, export what it prints, run this script.

-- Use an installed module first; from a checkout, fall back to the build next to this script.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.cpath = package.cpath .. ";" .. here .. "/../../build/" .. (jit and "luajit" or "lua5.4") .. "/?.so"
local smsend = require "smsend"

local MAX_ATTEMPTS = 3

-- os.exit(code, true) closes the Lua state first, so the client's finalizer wipes its credentials.
local function fail(msg)
  print(msg)
  os.exit(1, true)
end

if not arg[1] or arg[1] == "" then
  io.stderr:write("usage: verify.lua PHONE-NUMBER   (international form, e.g. +393471234567)\n")
  os.exit(2)
end

-- "+39 347 123 4567", "0039 347-1234567", ... all become "+393471234567"; a number without a
-- country prefix is refused here, before anything is sent or charged.
local recipient, why = smsend.normalize_recipient(arg[1])
if not recipient then fail("not a usable phone number: " .. why) end

-- No options: the credentials (and SMSEND_BASE_URL, if set) come from the environment, so they
-- never appear in the script, in argv or in the shell history.
local client, err = smsend.new{}
if not client then fail("cannot create the smsend client: " .. err) end

local sent = client:request_pin{ recipient = recipient, senderName = "Verify", expiry = 5,
                                 messageBody = "Your verification code is %PIN%" }
if not sent.ok then
  -- retryable = the request never reached the gateway, so trying again cannot send a second SMS
  fail(("could not send the PIN (%s): %s%s"):format(sent.error, sent.message,
    sent.retryable and " (nothing was sent; safe to try again)" or ""))
end
print("A PIN was sent by SMS to " .. recipient .. ".")

local verified = false
for attempt = 1, MAX_ATTEMPTS do
  io.write("Enter the PIN: ")
  io.stdout:flush()                          -- the prompt has no newline: show it before reading
  local pin = io.read("l")
  if not pin then print() fail("no PIN entered") end
  pin = pin:match("^%s*(.-)%s*$")

  local left = MAX_ATTEMPTS - attempt
  if pin == "" then
    print("No PIN entered.")                 -- costs one of our attempts, none of the gateway's
  else
    -- The PIN is never printed or logged: it only goes to the gateway.
    local st = client:verify_pin{ recipient = recipient, pin = pin }
    if st.ok then
      verified = true
      break
    end
    if st.error ~= "wrong_pin" then
      fail(("could not verify the PIN (%s): %s"):format(st.error, st.message))
    end
    -- The gateway counts the tries and voids the PIN at 0: trust its number when it is lower.
    left = math.min(st.tries_remaining or 0, left)
    print(("Wrong PIN, %d %s remaining."):format(left, left == 1 and "try" or "tries"))
  end
  if left == 0 then break end
end
client:close()

if not verified then fail("The number is NOT verified.") end
print("PIN verified: " .. recipient .. " is confirmed.")
