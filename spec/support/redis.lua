-- Spec support: a Debian redis-server on a free loopback port, in a temp dir, with no persistence
-- (--save '' --appendonly no) and a random password. It stops when the spec calls :stop(), and by
-- itself when the busted process that started it is gone.
--
--   local redis = require "spec.support.redis"
--   local r = redis.start()      -- r.url = "redis://:PASSWORD@127.0.0.1:PORT/DB", r.port, r.password
--   r:pause() / r:resume()       -- SIGSTOP / SIGCONT: connections are accepted, nothing answers
--   r:cli("KEYS", "*")           -- redis-cli output (lines)
--   r:scan("smsend:*")           -- keys, walked with SCAN
--   r:stop()

local helpers = require "spec.support.helpers"

local sandbox = helpers.sandbox
local shq = helpers.shell_quote
local run, capture = sandbox.run, sandbox.capture

local M = {}

local Redis = {}
Redis.__index = Redis

function M.available()
  return helpers.command_exists("redis-server") and helpers.command_exists("redis-cli")
end

local function random_password()
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(12)
  f:close()
  return "spec-" .. raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
end

-- redis.start{ db = 0 } → a running server (raises when it does not come up within 10 s).
function M.start(opts)
  local o = opts or {}
  local dir = helpers.tmpdir("smsend-redis")
  local r = setmetatable({ dir = dir, password = random_password(), db = o.db or 0 }, Redis)
  r.pid_file = dir .. "/redis.pid"
  for _ = 1, 3 do
    r.port = sandbox.free_port()
    local args = table.concat({
      "redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "''", "--appendonly", "no",
      "--dir", shq(dir), "--requirepass", r.password, "--logfile", shq(dir .. "/redis.log"),
      "--daemonize", "no",
    }, " ")
    -- the shell waits for the server; a watcher stops it once the owner (busted) is gone
    local owner = sandbox.my_pid()
    local script = ("%s & rp=$!; echo $rp > %s; (while kill -0 %d 2>/dev/null; do sleep 1; done; "
      .. "kill -CONT $rp; kill $rp) & wp=$!; wait $rp; kill $wp 2>/dev/null; kill -0 %d 2>/dev/null || rm -rf %s")
      :format(args, shq(r.pid_file), owner, owner, shq(dir))
    assert(run("sh -c " .. shq(script) .. " >/dev/null 2>&1 </dev/null &"))
    local deadline = helpers.gettime() + 10
    while helpers.gettime() < deadline do
      r.pid = r.pid or tonumber((sandbox.read_file(r.pid_file) or ""):match("%d+"))
      if r.pid and sandbox.port_open(r.port) and r:cli("PING")[1] == "PONG" then
        r.url = ("redis://:%s@127.0.0.1:%d/%d"):format(r.password, r.port, r.db)
        return r
      end
      if r.pid and not sandbox.pid_alive(r.pid) then break end
      helpers.sleep(0.02)
    end
    local log = sandbox.read_file(dir .. "/redis.log") or ""
    if r.pid then run("kill -KILL " .. r.pid .. " 2>/dev/null") end
    r.pid = nil
    if not log:find("Address already in use", 1, true) then
      error("redis-server did not start:\n" .. log:sub(-2000), 2)
    end
  end
  error("redis-server found no free port", 2)
end

-- redis-cli with the server's password and database → output lines.
function Redis:cli(...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = shq(tostring(a)) end
  local out = capture(("REDISCLI_AUTH=%s redis-cli -h 127.0.0.1 -p %d -n %d --no-auth-warning %s 2>&1")
    :format(shq(self.password), self.port, self.db, table.concat(args, " ")))
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

-- Every key of the server's database matching pattern (default "*"), walked with SCAN (never KEYS),
-- sorted.
function Redis:scan(pattern)
  local keys = self:cli("--scan", "--pattern", pattern or "*")
  table.sort(keys)
  return keys
end

function Redis:pause() assert(run("kill -STOP " .. self.pid)) end
function Redis:resume() assert(run("kill -CONT " .. self.pid)) end
function Redis:alive() return sandbox.pid_alive(self.pid) end

-- Stops the server (and waits until it is gone); the temp dir goes unless SMSEND_SANDBOX_KEEP=1.
function Redis:stop()
  if self.pid and sandbox.pid_alive(self.pid) then
    run("kill -CONT " .. self.pid .. " 2>/dev/null; kill -TERM " .. self.pid .. " 2>/dev/null")
    local deadline = helpers.gettime() + 5
    while sandbox.pid_alive(self.pid) and helpers.gettime() < deadline do helpers.sleep(0.02) end
    if sandbox.pid_alive(self.pid) then run("kill -KILL " .. self.pid .. " 2>/dev/null") end
  end
  if not self.removed and os.getenv("SMSEND_SANDBOX_KEEP") ~= "1" then
    self.removed = true
    run("rm -rf " .. shq(self.dir))
  end
end

return M
