-- Spec support for the deployment specs (spec/deploy_*_spec.lua): looking for digits of a phone
-- number in store keys, counting what reached the sandbox gateway, and child Lua processes that
-- start their work at one agreed instant.
--
--   local deploy = require "spec.support.deploy"
--   deploy.digit_run("smsend:v1:ab12...:c", "+393471234567", 4)  --> "3471" | nil
--   deploy.sent(sb)                       --> PIN requests the gateway recorded
--   deploy.merge(base, extra)             --> a new table: base's fields, then extra's
--   local parts = deploy.parts{ redis_db = 1 }  -- in a describe: parts.sb, parts.store
--   local kids = deploy.spawn_all(code, { { N = "1" }, { N = "2" } }, 0.8)  -- start together
--   for _, k in ipairs(kids) do local out, ok = k:wait() end

local helpers = require "spec.support.helpers"
local redis = require "spec.support.redis"
local util = require "spec.support.util"

local M = {}

-- The first run of `len` consecutive digits of `number` (any spelling: only its digits count)
-- found in s, or nil.
function M.digit_run(s, number, len)
  local digits = number:gsub("%D", "")
  for i = 1, #digits - len + 1 do
    local run = digits:sub(i, i + len - 1)
    if s:find(run, 1, true) then return run end
  end
  return nil
end

-- The first (run, number) of `len` digits of any of `numbers` found in s, or nil.
function M.leak(s, numbers, len)
  for _, number in ipairs(numbers) do
    local run = M.digit_run(s, number, len)
    if run then return run, number end
  end
  return nil
end

-- Inside a describe block: starts a sandbox gateway (plain HTTP) and, with how.redis_db, a
-- redis-server using that database in setup(), stops them in teardown(). → a table whose fields
-- sb and store hold them meanwhile.
function M.parts(how)
  local busted = require "busted" -- this file is not loaded by busted: its globals are not ours
  local p = {}
  busted.setup(function()
    p.sb = helpers.start_sandbox{ tls = false }
    if how and how.redis_db then
      assert(redis.available(), "redis-server and redis-cli are needed (Debian package redis-server)")
      p.store = redis.start{ db = how.redis_db }
    end
  end)
  busted.teardown(function()
    if p.store then p.store:stop() end
    if p.sb then helpers.stop_sandbox(p.sb) end
    p.sb, p.store = nil, nil
  end)
  return p
end

-- A new table with the fields of every given table (nil ones skipped), later ones winning.
function M.merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do out[k] = v end
  end
  return out
end

-- Requests the gateway recorded for `path` (default "2fa/request"), fault modes included.
function M.sent(sb, path)
  return #sb:requests(path or "2fa/request")
end

-- Distinct gateway-side connection serials ($connection) of the recorded requests.
function M.connections(sb, path)
  local seen, n = {}, 0
  for _, r in ipairs(sb:requests()) do
    if (not path or r.path == path) and not seen[r.connection] then
      seen[r.connection] = true
      n = n + 1
    end
  end
  return n
end

local Child = {}
Child.__index = Child

-- → the child's output (stdout and stderr, without the trailing newline), whether it exited 0.
function Child:wait()
  local out = self.pipe:read("*a")
  local ok = self.pipe:close()
  os.remove(self.file)
  return (out:gsub("\n$", "")), ok == true
end

-- Starts `code` in a child of the running interpreter (the module from SMSEND_CPATH, lua/ on the
-- path) with the given environment; returns at once. START_AT in its environment is the
-- socket.gettime() instant every child of one spawn_all waits for.
function M.spawn(code, env)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write('package.cpath = (os.getenv("SMSEND_CPATH") or "") .. ";" .. package.cpath\n',
          'package.path = ', ("%q"):format(helpers.repo_root .. "/lua/?.lua;"), ' .. package.path\n',
          'local socket = require "socket"\n',
          'local start_at = tonumber(os.getenv("START_AT") or "0")\n',
          'while socket.gettime() < start_at do socket.sleep(0.001) end\n',
          code)
  f:close()
  local prefix = "env"
  for k, v in pairs(env or {}) do prefix = prefix .. " " .. k .. "=" .. util.sh_quote(v) end
  local pipe = assert(io.popen(prefix .. " " .. util.interpreter() .. " " .. util.sh_quote(file) .. " 2>&1"))
  return setmetatable({ pipe = pipe, file = file }, Child)
end

-- Starts one child per environment in envs, all told to begin `delay` seconds from now (enough
-- for the interpreters to load the module), and returns them.
function M.spawn_all(code, envs, delay)
  local at = ("%.3f"):format(helpers.gettime() + (delay or 0.8))
  local kids = {}
  for i, env in ipairs(envs) do
    local e = { START_AT = at }
    for k, v in pairs(env) do e[k] = v end
    kids[i] = M.spawn(code, e)
  end
  return kids
end

return M
