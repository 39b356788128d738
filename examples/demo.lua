-- demo.lua — `make demo`: the whole 2FA flow against the bundled sandbox gateway, no account needed.
-- Starts the sandbox on a free loopback port, requests a PIN, reads it from the sandbox, verifies a
-- wrong PIN (tries remaining), verifies the right one, and prints every status table; then the
-- command-line tool as a script uses it (bin/smsend --json and its exit code), and a few lines of
-- the counters this process kept (smsend.metrics(), Prometheus text).
local root = (debug.getinfo(1, "S").source:match("^@(.*)/examples/[^/]*$")) or "."
package.cpath = (os.getenv("SMSEND_CPATH") or (root .. "/build/lua5.4/?.so")) .. ";" .. package.cpath

local smsend = require "smsend"
local sandbox = dofile(root .. "/sandbox/launch.lua")

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs bin/smsend with the sandbox's token credentials; → its standard output, its exit code.
-- (io.popen's close gives no exit code under LuaJIT: the shell prints it instead.)
local function cli(sb, args)
  local cmd = ("env -u SMSEND_USERNAME -u SMSEND_PASSWORD -u SMSEND_SESSION_KEY SMSEND_BASE_URL=%s "
    .. "SMSEND_USER_KEY=%s SMSEND_ACCESS_TOKEN=%s %s %s 2>&1; echo \"exit=$?\"")
    :format(sh_quote(sb.base_url), sh_quote(sb.user_key), sh_quote(sb.access_token),
            sh_quote(root .. "/bin/smsend"), args)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  local text, code = out:match("^(.-)\n?exit=(%d+)\n?$")
  return text or out, tonumber(code)
end

local EXIT_MEANS = {
  [0] = "ok", [1] = "a definite refusal or wrong PIN", [2] = "usage or configuration error, nothing sent",
  [3] = "failed and nothing was sent: safe to retry", [4] = "outcome unknown: an SMS may have been sent",
}

local function show_cli(sb, args)
  print("$ smsend " .. args)
  local out, code = cli(sb, args)
  print("   " .. out:gsub("\n", "\n   "))
  print(("   exit code %s: %s"):format(tostring(code), EXIT_MEANS[code] or "?"))
  return code
end

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

  print("-- the command-line tool, as a script calls it (one JSON object, then the exit code)")
  local code = show_cli(sb, "--json request-pin '+39 347 765 4321' --sender Demo")
  assert(code == 0, "bin/smsend request-pin failed")
  sb:fault_next("drop") -- the gateway takes the next request and drops the connection unanswered
  show_cli(sb, "--json request-pin +393477654321")

  print("-- smsend.metrics(): this process's counters (the CLI runs were other processes)")
  for line in smsend.metrics():gmatch("[^\n]+") do
    local bucket = line:find("_bucket{", 1, true) and not line:find("+Inf", 1, true)
    if line:sub(1, 1) ~= "#" and not line:find(" 0$") and not bucket then print("   " .. line) end
  end
end)
sb:stop()
if not ok then
  io.stderr:write("demo failed: " .. tostring(err) .. "\n")
  os.exit(1)
end
print("demo finished: PIN requested and verified through the sandbox, by the module and by the CLI")
