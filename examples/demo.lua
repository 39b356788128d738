-- demo.lua — `make demo`: the whole 2FA flow against the bundled sandbox gateway, no account needed.
-- Starts the sandbox on a free loopback port, requests a PIN, reads it from the sandbox, verifies a
-- wrong PIN (tries remaining), verifies the right one, and prints every status table.
local root = (debug.getinfo(1, "S").source:match("^@(.*)/examples/[^/]*$")) or "."
package.cpath = (os.getenv("SMSEND_CPATH") or (root .. "/build/lua5.4/?.so")) .. ";" .. package.cpath

local smsend = require "smsend"
local sandbox = dofile(root .. "/sandbox/launch.lua")

local function show(title, st)
  local keys = {}
  for k in pairs(st) do keys[#keys + 1] = k end
  table.sort(keys)
  print(("-- %s"):format(title))
  for _, k in ipairs(keys) do
    local v = st[k]
    print(("   %-16s %s"):format(k, type(v) == "string" and string.format("%q", v) or tostring(v)))
  end
end

local sb = sandbox.start{ tls = false }
local ok, err = pcall(function()
  print("sandbox gateway at " .. sb.base_url)
  local user = sandbox.DEFAULT_USERS[1]
  local client = assert(smsend.new{ username = user.username, password = user.password, base_url = sb.base_url })
  print("client: " .. tostring(client))
  local phone = "+393471234567"

  local st = client:request_pin{ recipient = phone, senderName = "Demo", expiry = 5,
                                 messageBody = "Your demo code is %PIN%" }
  show("client:request_pin", st)
  assert(st.ok, "request_pin failed: " .. tostring(st.message))

  local pin = sb:last_pin(phone)
  print("-- the sandbox 'sent' this SMS: " .. tostring((sb:sms()[1] or {}).text))

  local wrong = pin == "000000" and "111111" or "000000"
  show("client:verify_pin with a wrong PIN", client:verify_pin{ recipient = phone, pin = wrong })
  local right = client:verify_pin{ recipient = phone, pin = pin }
  show("client:verify_pin with the right PIN", right)
  show("client:check_session", client:check_session())
  client:close()
  assert(right.ok, "verify_pin failed")
end)
sb:stop()
if not ok then
  io.stderr:write("demo failed: " .. tostring(err) .. "\n")
  os.exit(1)
end
print("demo finished: PIN requested and verified through the sandbox")
