-- deploy_threads_spec.lua — the guard across OS threads of one process: spec/longrun/guard_threads.c
-- (8 threads, one Lua 5.4 state each, the module linked in) sends 1 000 request_pin calls to 10
-- numbers with min_interval = 60, claiming in the process store and then in a real redis-server;
-- exactly 10 may reach the sandbox gateway. `make tsan` runs the same program under
-- ThreadSanitizer. SMSEND_GUARD_THREADS_BIN runs another build of it (e.g. one of a patched src/).
local helpers = require "spec.support.helpers"
local redis = require "spec.support.redis"
local deploy = require "spec.support.deploy"

local shq = helpers.shell_quote
local capture = helpers.sandbox.capture
local root = helpers.repo_root

describe("the guard across 8 OS threads, one Lua state each", function()
  local sb, bin

  setup(function()
    bin = os.getenv("SMSEND_GUARD_THREADS_BIN")
    if not bin or bin == "" then
      -- built by the Makefile's rule (the one `make guard-threads` uses), brought up to date here
      bin = root .. "/build/threads/guard_threads"
      local out = capture(("make -C %s --no-print-directory -s build/threads/guard_threads 2>&1; echo \"rc=$?\"")
        :format(shq(root)))
      assert(out:match("rc=0\n?$"), "guard_threads.c did not build:\n" .. out)
    end
    sb = helpers.start_sandbox{ tls = false }
  end)

  teardown(function()
    if sb then helpers.stop_sandbox(sb) end
  end)

  before_each(function() sb:reset() end)

  -- runs the program → its output, after checking its exit status and closing line
  local function run(guard)
    local out = capture(("%s %s 8 1000 %s 2>&1; echo \"rc=$?\""):format(shq(bin), shq(sb.base_url), shq(guard)))
    local rc = tonumber(out:match("rc=(%d+)\n?$"))
    assert.are.equal(0, rc, out)
    assert.matches("guard_threads: 8 threads, 1000 requests, 10 numbers: 10 sent, 990 cooldown, 10 at the gateway",
      out, 1, true)
    -- every thread took part
    local threads = 0
    for sent, cooldown in out:gmatch("thread %d+: (%d+) sent, (%d+) cooldown") do
      assert.are.equal(125, tonumber(sent) + tonumber(cooldown))
      threads = threads + 1
    end
    assert.are.equal(8, threads, out)
    return out
  end

  local function numbers_sent()
    local seen, n = {}, 0
    for _, r in ipairs(sb:requests()) do
      local body = helpers.cjson.decode(r.body)
      if not seen[body.recipient] then seen[body.recipient], n = true, n + 1 end
    end
    return n
  end

  it("lets exactly 10 PINs reach the gateway with the process store", function()
    run("process")
    assert.are.equal(10, deploy.sent(sb)) -- counted here too, on the gateway's side
    assert.are.equal(10, numbers_sent()) -- one for each number
  end)

  it("never tells a refused caller to wait longer than min_interval, run after run", function()
    -- a claim granted while others wait for the store's lock must not make their retry_after
    -- exceed the interval (a wait reckoned from a clock read before the lock would: 61 for 60);
    -- the interleaving is rare in one run, so 30 runs
    for _ = 1, 30 do run("process") end
    assert.are.equal(300, deploy.sent(sb))
  end)

  it("lets exactly 10 PINs reach the gateway with a Redis store", function()
    assert(redis.available(), "redis-server and redis-cli are needed (Debian package redis-server)")
    local store = redis.start{ db = 4 }
    local ok, err = pcall(function()
      run(store.url)
      assert.are.equal(10, deploy.sent(sb))
      assert.are.equal(10, numbers_sent())
      local keys, numbers = store:scan("*"), {}
      for i = 0, 9 do numbers[#numbers + 1] = ("+3934799%05d"):format(i) end -- guard_threads.c's
      assert.are.equal(10, #keys)
      for _, k in ipairs(keys) do
        assert.matches("^smsend:v1:%x+:c$", k)
        assert.is_nil(deploy.leak(k, numbers, 4), k)
      end
    end)
    store:stop()
    assert(ok, err)
  end)
end)
