-- smsend sandbox: shared state, configuration and small utilities.
-- Runs inside nginx (ngx_http_lua, LuaJIT). Loaded by init_by_lua with the
-- path of the JSON configuration file written by smsend.sandbox (lua/smsend/sandbox.lua).

local cjson = require "cjson"

local M = {}

-- Shared dicts (declared in the generated nginx.conf):
--   sbx_config    runtime settings (session_ttl, ...)
--   sbx_users     "key:<user_key>" -> username, "login:<username>" -> JSON user
--   sbx_tokens    access token -> user_key (no expiry)
--   sbx_sessions  session key -> user_key (exptime = session_ttl, refreshed)
--   sbx_pins      normalized recipient -> JSON {pin, expires_at, tries}
--                 "last:<normalized recipient>" -> last generated PIN
--   sbx_requests  "n" counter, "r:<i>" -> JSON recorded request
--   sbx_sms       "n" counter, "s:<i>" -> JSON SMS record
M.dict = setmetatable({}, {
  __index = function(_, name)
    local d = ngx.shared["sbx_" .. name]
    if not d then error("missing lua_shared_dict sbx_" .. name) end
    return d
  end,
})

M.static = {}   -- settings from the config file that never change at run time

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
  f:close()
  return data
end

-- Called from init_by_lua_block.
function M.init(config_path)
  local raw = assert(read_file(config_path))
  local cfg = cjson.decode(raw)
  M.static = {
    console = cfg.console,
    owner_pid = cfg.owner_pid,
    remove_dir_on_orphan = cfg.remove_dir_on_orphan,
    dir = cfg.dir,
  }
  local d = M.dict
  d.config:set("session_ttl", tonumber(cfg.session_ttl) or 300)
  d.config:set("default_sender", cfg.default_sender or "SANDBOX")
  d.config:set("users", cjson.encode(cfg.users or {}))
  for _, u in ipairs(cfg.users or {}) do
    d.users:set("key:" .. u.user_key, u.username)
    d.users:set("login:" .. u.username, cjson.encode(u))
    if u.access_token and u.access_token ~= "" then
      d.tokens:set(u.access_token, u.user_key)
    end
  end
end

function M.get_config()
  local d = M.dict.config
  return {
    session_ttl = d:get("session_ttl"),
    default_sender = d:get("default_sender"),
    drop_next = d:get("drop_next") or 0,
  }
end

-- Random bytes from the kernel CSPRNG.
function M.random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local b = f:read(n)
  f:close()
  assert(b and #b == n, "short read from /dev/urandom")
  return b
end

function M.random_hex(nbytes)
  return (M.random_bytes(nbytes):gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

-- Uniform random 6-digit PIN (rejection sampling on a 32-bit value).
function M.random_pin()
  while true do
    local b1, b2, b3, b4 = M.random_bytes(4):byte(1, 4)
    local v = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    if v < 4294000000 then
      return string.format("%06d", v % 1000000)
    end
  end
end

-- JSON helpers -----------------------------------------------------------

function M.json_decode(s)
  local ok, v = pcall(cjson.decode, s)
  if ok then return v end
  return nil
end

-- cjson encodes an empty table as {}: encode sequences explicitly.
function M.json_array(list)
  if #list == 0 then return "[]" end
  local parts = {}
  for i, v in ipairs(list) do
    parts[i] = type(v) == "string" and v or cjson.encode(v)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

M.null = cjson.null
M.encode = cjson.encode

-- Logging ------------------------------------------------------------------
-- ngx.log inside a request appends the request line, which may contain a
-- password in its query string (login/token). Log from a zero-delay timer
-- instead, which has no request context, so nothing but `msg` is written.
local function log_now(premature, level, msg)
  ngx.log(level, msg)
end

function M.log(level, msg)
  local ok = ngx.timer.at(0, log_now, level, msg)
  if not ok then
    -- timers exhausted: still say something, without request context risk
    io.stderr:write(msg, "\n")
  end
end

-- One console line per SMS: error log (notice) and the optional console file.
function M.console(line)
  M.log(ngx.NOTICE, line)
  local path = M.static.console
  if path and path ~= "" then
    local f = io.open(path, "a")
    if f then
      f:write(line, "\n")
      f:close()
    end
  end
end

-- Owner watchdog ------------------------------------------------------------
-- When the process that launched the sandbox disappears (crashed test run,
-- killed CLI), nginx stops itself instead of lingering on the port.
local function owner_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local stat = f:read("*l") or ""
  f:close()
  -- a zombie (state Z) is as good as gone
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= "Z"
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function watchdog(premature)
  if premature then return end
  local pid = M.static.owner_pid
  if owner_alive(pid) then
    local ok = ngx.timer.at(0.5, watchdog)
    if not ok then ngx.log(ngx.ERR, "sandbox: cannot re-arm owner watchdog") end
    return
  end
  ngx.log(ngx.NOTICE, "sandbox: owner process ", pid, " is gone, shutting down")
  if M.static.remove_dir_on_orphan and M.static.dir and #M.static.dir > 1 then
    os.execute("rm -rf " .. shell_quote(M.static.dir))
  end
  os.execute("kill -TERM " .. ngx.worker.pid())
end

function M.init_worker()
  local pid = tonumber(M.static.owner_pid)
  if pid and pid > 1 then
    M.static.owner_pid = pid
    ngx.timer.at(0.5, watchdog)
  end
end

return M
