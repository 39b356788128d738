-- with_sandbox.lua — starts the sandbox gateway (plain HTTP), runs one command with the
-- gateway's base URL in place of every "{BASE_URL}" argument, stops the sandbox and exits with
-- the command's status. Used by `make tsan` / `make threads`.
--   lua5.4 spec/longrun/with_sandbox.lua CMD [ARG...]
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/longrun"
local sandbox = dofile(here .. "/../../sandbox/launch.lua")

if not arg[1] then
  io.stderr:write("usage: with_sandbox.lua CMD [ARG...]\n")
  os.exit(2)
end
local sb = sandbox.start{ tls = false }
local words = {}
for i = 1, #arg do
  words[#words + 1] = sandbox.shell_quote((arg[i]:gsub("{BASE_URL}", sb.base_url)))
end
local t0 = os.time()
local ok, code = sandbox.run(table.concat(words, " "))
local log = sb:read_error_log()
sb:stop()
-- the gateway itself must not have failed while the command ran
local lua_errors = 0
for line in log:gmatch("[^\n]+") do
  if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then
    lua_errors = lua_errors + 1
    if lua_errors <= 5 then io.stderr:write("sandbox: ", line, "\n") end
  end
end
io.stdout:write(("with_sandbox: command exited %s after %d s\n"):format(tostring(code), os.time() - t0))
if lua_errors > 0 then
  io.stderr:write(("with_sandbox: %d error lines in the sandbox log\n"):format(lua_errors))
  os.exit(1)
end
os.exit(ok and 0 or (tonumber(code) or 1))
