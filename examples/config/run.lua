-- run.lua — stands in for the host program (game or server) that runs admin.lua as its
-- configuration: loads it in a sandboxed environment, then runs one admin command through guard.
--
--   export SMSEND_USER_KEY=... SMSEND_ACCESS_TOKEN=...
--   lua5.4 examples/config/run.lua wipe_world "+39 347 123 4567" [config.lua]
--
-- Exit status: 0 the command ran, 1 guard refused it, 2 usage or a broken configuration.
-- A C host does the same with luaL_requiref and lua_pcall: see examples/embed/.

-- The host's own module search: installed first, then the build of this checkout.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
package.cpath = package.cpath .. ";" .. here .. "/../../build/" .. (jit and "luajit" or "lua5.4") .. "/?.so"
local smsend = require "smsend"

local action, phone, config = arg[1], arg[2], arg[3] or (here .. "/admin.lua")
if not action or not phone then
  io.stderr:write("usage: run.lua ACTION PHONE [CONFIG]\n")
  os.exit(2)
end

-- What the host itself can do. The configuration decides whether; only the host does.
local perform = {
  wipe_world   = function() print("host: world wiped, new world generated") end,
  ban_player   = function() print("host: player banned") end,
  list_players = function() print("host: 0 players online") end,
}

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- The configuration's environment: no io, os, load, dofile, debug or package, so a config file
-- cannot read files, run commands or load native code; `require` hands out smsend and nothing else.
-- Library tables are copies, so the config cannot patch the host's string or table functions.
local env = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  select = select, tonumber = tonumber, tostring = tostring, type = type,
  string = copy(string), table = copy(table), math = copy(math),
  require = function(name)
    if name == "smsend" then return smsend end
    error("the configuration may not load module '" .. tostring(name) .. "'", 2)
  end,
  -- ask(prompt): one line typed at the console, nil at end of input.
  ask = function(prompt)
    io.write(tostring(prompt))
    io.stdout:flush()
    return io.read("l")
  end,
  log = function(text) print("config: " .. tostring(text)) end,
}

local function die(msg)
  io.stderr:write("host: " .. msg .. "\n")
  os.exit(2, true)
end

-- "t": source text only; precompiled bytecode can crash the interpreter on purpose.
local chunk, err = loadfile(config, "t", env)
if not chunk then die("cannot load the configuration: " .. err) end
local ok, perr = pcall(chunk)
if not ok then die("the configuration failed: " .. tostring(perr)) end
if type(env.admin_actions) ~= "table" or type(env.guard) ~= "function" then
  die("the configuration must define admin_actions and guard(action, phone)")
end
if not perform[action] or not env.admin_actions[action] then die("no such admin action: " .. action) end

-- An error inside guard counts as a refusal, and only `true` itself lets the command through.
local gok, allowed = pcall(env.guard, action, phone)
if not gok then io.stderr:write("host: guard failed: " .. tostring(allowed) .. "\n") end
if gok and allowed == true then
  print("host: performing " .. action)
  perform[action]()
  os.exit(0, true)
end
print("host: " .. action .. " refused")
os.exit(1, true)
