-- guard_spec.lua — the guard's plain-C tests (spec/c/test_guard.c): SHA-256 / HMAC-SHA-256 vectors,
-- claims in the process store (8 threads, fork) and in a real redis-server started here on a
-- loopback port, which is then paused (SIGSTOP) and stopped to see the store become unavailable
-- in time. Built with cc against src/guard*.c src/sha256.c src/hash.c src/secret.c and hiredis.
local helpers = require "spec.support.helpers"
local redis = require "spec.support.redis"

local shq = helpers.shell_quote
local capture = helpers.sandbox.capture
local root = helpers.repo_root

local function result_line(out)
  local passed, failed = out:match("\n?(%d+) passed, (%d+) failed\n?$")
  return tonumber(passed), tonumber(failed)
end

describe("the guard (C)", function()
  local dir, bin, store

  -- runs the test binary → output; asserts it printed its result line with no failure
  local function run_c(...)
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = shq(a) end
    local out = capture(shq(bin) .. " " .. table.concat(args, " ") .. " 2>&1; echo \"rc=$?\"")
    local rc = tonumber(out:match("rc=(%d+)\n?$"))
    out = out:gsub("rc=%d+\n?$", "")
    local passed, failed = result_line(out)
    assert.is_number(passed, out)
    assert.are.equal(0, failed, out)
    assert.is_true(passed > 0, out)
    assert.are.equal(0, rc, out)
    return out
  end

  setup(function()
    dir = helpers.tmpdir("smsend-guard")
    bin = dir .. "/test_guard"
    local src = { "spec/c/test_guard.c", "src/guard.c", "src/guard_redis.c", "src/sha256.c", "src/hash.c",
      "src/secret.c", "src/utf8.c" }
    for i, f in ipairs(src) do src[i] = shq(root .. "/" .. f) end
    local cmd = ("cc -std=c11 -O1 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -pthread -I%s -o %s %s "
      .. "$(pkg-config --cflags --libs hiredis) -lm 2>&1; echo \"rc=$?\""):format(shq(root .. "/src"), shq(bin),
      table.concat(src, " "))
    local out = capture(cmd)
    assert(out:match("rc=0\n?$"), "test_guard.c did not build:\n" .. out)
    assert(redis.available(), "redis-server and redis-cli are needed (Debian package redis-server)")
    store = redis.start{ db = 3 }
  end)

  teardown(function()
    if store then store:stop() end
    if dir then os.execute("rm -rf " .. shq(dir)) end
  end)

  it("computes SHA-256 and HMAC-SHA-256 as FIPS 180-2 and RFC 4231 say", function()
    run_c("sha")
  end)

  it("claims in the process store: cooldown, window, release, expiry, 8 threads, the bound", function()
    local out = run_c("process")
    assert.matches("8 threads x 20000 claims on 10 numbers: 10 granted, 0 unavailable", out, 1, true)
  end)

  it("keeps the process store's locks usable in children forked while threads claim", function()
    run_c("fork")
  end)

  it("claims in Redis: the same rules, 8 threads, kept-alive connections, AUTH, SELECT, clean keys", function()
    local out = run_c("redis", store.url)
    assert.matches("8 threads x 300 claims on 10 numbers: 10 granted, 0 unavailable", out, 1, true)
    -- seen from outside: keys in the chosen database only, none with digits of a number, all expiring
    local keys = store:cli("KEYS", "*")
    assert.is_true(#keys > 10, table.concat(keys, "\n"))
    for _, k in ipairs(keys) do
      assert.matches("^smsend:v1:%x+:[cw]$", k)
      assert.is_nil(k:find("3471234567", 1, true))
      assert.is_true(tonumber(store:cli("PTTL", k)[1]) > 0, k)
    end
    local db0 = capture(("REDISCLI_AUTH=%s redis-cli -p %d -n 0 --no-auth-warning DBSIZE")
      :format(shq(store.password), store.port))
    assert.are.equal("0", db0:match("%d+"))
    -- the password never reaches the test's output
    assert.is_nil(out:find(store.password, 1, true))
  end)

  it("is unavailable within the timeout when Redis does not answer, then when it is gone", function()
    store:pause()
    local ok, out = pcall(run_c, "paused", store.url)
    store:resume()
    assert(ok, out)
    assert.matches("gave no answer to", out, 1, true)
    store:stop()
    out = run_c("down", store.url)
    assert.matches("Connection refused", out, 1, true)
  end)
end)
