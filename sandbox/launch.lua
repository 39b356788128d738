-- sandbox/launch.lua — the project's own entry to the sandbox (specs, tools, bench, demo): the
-- launcher is lua/smsend/sandbox.lua; this gives its full-control start (TLS on by default).
--
--   local sandbox = dofile("sandbox/launch.lua")
--   local sb = sandbox.start{ port = 0, tls = true }   -- sandbox.launch of smsend.sandbox
--   ... sb.base_url, sb:requests(), sb:last_pin("+39...") ...
--   sb:stop()

local src = debug.getinfo(1, "S").source
local dir = (src:sub(1, 1) == "@" and src:sub(2) or "sandbox/launch.lua"):match("^(.*)/[^/]*$") or "."
local M = dofile(dir .. "/../lua/smsend/sandbox.lua")

-- Not the module's own start (that one is for users' tests): the specs want every option.
return setmetatable({
  start = M.launch,
  repo_root = M.lib_dir:match("^(.*)/[^/]*$"),
}, { __index = M })
