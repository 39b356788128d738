-- aggressive_gc.lua — preloaded through LUA_INIT_5_4 / LUA_INIT by `make asan`, `make valgrind`
-- and the long runs, so the collector runs far more often than by default and a C object freed
-- too early (or kept too long) by the module shows up as a sanitizer/memcheck error or a leak.
--   SMSEND_GC=generational (default on 5.4): a minor collection after every 1 % of growth
--   SMSEND_GC=incremental: a full cycle whenever memory grew by 10 % (pause 10)
local mode = os.getenv("SMSEND_GC")
if mode == nil or mode == "" then mode = "generational" end
if _VERSION == "Lua 5.4" and mode == "generational" then
  collectgarbage("generational", 1, 20)
elseif _VERSION == "Lua 5.4" then
  collectgarbage("incremental", 10, 400)
else
  -- LuaJIT / 5.1: no generational mode
  collectgarbage("setpause", 10)
  collectgarbage("setstepmul", 400)
end
