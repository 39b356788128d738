-- util.lua — small test utilities that do not need the sandbox: free/closed ports, a port whose
-- connects time out, a capath directory, counting this process's sockets, running a Lua snippet in
-- a child interpreter.

-- The shell and port helpers are sandbox/launch.lua's (found from this file's own location).
local function script_dir()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or "spec/support/util.lua"
  return file:match("^(.*)/[^/]*$") or "."
end
local sandbox = dofile(script_dir() .. "/../../sandbox/launch.lua")

local M = {}

-- A loopback port with nothing listening on it (bound once, then released).
M.closed_port = sandbox.free_port

local sh_quote = sandbox.shell_quote
M.sh_quote = sh_quote

-- A directory holding ca_file under its OpenSSL subject-hash name, usable as capath.
function M.capath_for(ca_file)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. sh_quote(dir) .. " && cp " .. sh_quote(ca_file) .. " " .. sh_quote(dir) .. "/ca.pem && openssl rehash " .. sh_quote(dir) .. " >/dev/null 2>&1"))
  return dir
end

-- The interpreter running this process, so children use the same Lua.
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or "lua5.4"
end
M.interpreter = interpreter

-- Runs code in a fresh interpreter with the module on its path and extra environment variables;
-- returns its stdout without the trailing newline, and its exit status.
function M.run_lua(code, env, stdin)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  -- the module from the build under test, and the repo's Lua helpers (lua/smsend/*.lua)
  f:write('package.cpath = (os.getenv("SMSEND_CPATH") or "") .. ";" .. package.cpath\n',
          'package.path = "./lua/?.lua;" .. package.path\n', code)
  f:close()
  local prefix = "env"
  for k, v in pairs(env or {}) do prefix = prefix .. " " .. k .. "=" .. sh_quote(v) end
  local cmd = prefix .. " " .. interpreter() .. " " .. file
  if stdin then cmd = "printf %s " .. sh_quote(stdin) .. " | " .. cmd end
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  local ok, _, code_ = p:close()
  os.remove(file)
  return (out:gsub("\n$", "")), ok, code_
end

-- Established TCP connections of this process whose remote port is port.
function M.open_sockets_to(port)
  collectgarbage()
  collectgarbage()
  local inodes = {}
  -- read our own pid here: in the shell started by popen, /proc/self would be the shell
  local stat = io.open("/proc/self/stat"):read("*l")
  local pid = stat:match("^(%d+)")
  local ls = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  for line in ls:lines() do
    local inode = line:match("socket:%[(%d+)%]")
    if inode then inodes[inode] = true end
  end
  ls:close()
  local n = 0
  for _, file in ipairs{ "/proc/net/tcp", "/proc/net/tcp6" } do
    local f = io.open(file)
    if f then
      for line in f:lines() do
        local rem_port, st, inode = line:match("^%s*%d+:%s+%x+:%x+%s+%x+:(%x+)%s+(%x+)%s+%S+%s+%S+%s+%S+%s+%S+%s+%S+%s+(%d+)")
        if rem_port and tonumber(rem_port, 16) == port and st == "01" and inodes[inode] then n = n + 1 end
      end
      f:close()
    end
  end
  return n
end

-- The packaging specs (rock, install, types, exports) run once per `make check`: .ci/check-suite
-- sets SMSEND_PACKAGING=1 for them. Anywhere else this registers one pending test and returns
-- true, and the spec file returns at once.
function M.skip_unless_packaging(what)
  if os.getenv("SMSEND_PACKAGING") == "1" then return false end
  require("busted").pending(what .. ": a packaging spec, run once per make check (SMSEND_PACKAGING=1)")
  return true
end

-- Runs a shell command; returns whether it succeeded and its output (stdout and stderr).
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  local ok = p:close()
  return ok, out
end

-- A listener with a backlog of 1 that never accepts, its queue filled with connections that are
-- never accepted: the kernel then drops further SYNs, so a connect neither succeeds nor is
-- refused, it times out. Returns the port and a close function.
function M.full_backlog_port()
  local socket = require "socket"
  local server = assert(socket.bind("127.0.0.1", 0, 1))
  local _, port = server:getsockname()
  port = tonumber(port)
  local fillers = {}
  for _ = 1, 4 do
    local c = assert(socket.tcp())
    c:settimeout(0)
    c:connect("127.0.0.1", port) -- in progress or done; either way it takes a queue slot
    fillers[#fillers + 1] = c
  end
  socket.sleep(0.2)
  local function close()
    for _, c in ipairs(fillers) do c:close() end
    server:close()
  end
  return port, close
end

return M
