-- admin.lua — the admin script of the game-loop host (host.c): gates an admin command behind an SMS
-- PIN without ever stalling the host's 20 Hz loop. The host calls start(action, phone) once, then
-- tick(line) on every tick, where line is what the console typed since the last tick (nil: nothing,
-- false: the console is closed), until tick returns "allow" or "refuse" and a reason.
--
-- The calls are ops (client:request_pin_async / verify_pin_async): tick() polls the one in flight
-- and returns at once, so the loop keeps its 50 ms rhythm however long the gateway takes.
-- GAMELOOP_BLOCKING=1 makes the script use the blocking calls instead, to see what they would do to
-- the loop (the whole exchange inside one tick).
local smsend = require "smsend"

-- Created once at server start; credentials from the environment (SMSEND_USER_KEY + ...).
local client = assert(smsend.new{ min_interval = 60, timeout = 10 })
local BLOCKING = os.getenv("GAMELOOP_BLOCKING") == "1"

local function say(text) print("admin: " .. text) end

-- An op for client:request_pin / verify_pin (name), or with GAMELOOP_BLOCKING the blocking call's
-- table wrapped to look like one.
local function start_call(name, fields)
  if BLOCKING then
    local st = client[name](client, fields)
    return { poll = function() return st end }
  end
  return client[name .. "_async"](client, fields)
end

local M = {}
local cmd -- { action =, recipient =, op =, phase = "sending" | "typing" | "verifying", tries =, typed = }

function M.start(action, phone)
  local recipient, why = smsend.normalize_recipient(phone)
  cmd = { action = action, recipient = recipient, why = why, tries = 3, typed = {} }
  if not recipient then return end
  say("sending a PIN to confirm " .. action)
  cmd.op = start_call("request_pin", { recipient = recipient, senderName = "GameAdmin", expiry = 5,
                                      messageBody = "Code %PIN% confirms " .. action .. ". Do not share it." })
  cmd.phase = "sending"
end

local function ask()
  io.write("PIN to confirm " .. cmd.action .. ": ")
  io.flush()
  cmd.phase = "typing"
end

function M.tick(line)
  if not cmd.recipient then return "refuse", "no usable phone number: " .. tostring(cmd.why) end
  if line then cmd.typed[#cmd.typed + 1] = line end -- typed ahead of the prompt: kept for it
  if cmd.phase == "typing" then
    local pin = table.remove(cmd.typed, 1)
    if not pin then
      if line == false then return "refuse", "no PIN typed" end
      return nil
    end
    cmd.op = start_call("verify_pin", { recipient = cmd.recipient, pin = pin }) -- the PIN is never printed
    cmd.phase = "verifying"
    return nil
  end
  local st = cmd.op:poll() -- never waits: nil while the call is in flight
  if not st then return nil end
  if cmd.phase == "sending" then
    if not st.ok then return "refuse", ("cannot send the PIN (%s): %s"):format(st.error, st.message) end
    say(("PIN sent in %.2f s"):format(st.elapsed))
    ask()
    return nil
  end
  if st.ok then
    say("PIN verified")
    return "allow"
  end
  cmd.tries = cmd.tries - 1
  local left = math.min(st.tries_remaining or 0, cmd.tries)
  if st.error ~= "wrong_pin" or left == 0 then return "refuse", st.message end
  say(("wrong PIN, %d %s remaining"):format(left, left == 1 and "try" or "tries"))
  ask()
  return nil
end

return M
