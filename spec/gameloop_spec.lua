-- gameloop_spec.lua — examples/gameloop: a C host with a 20 Hz main loop (Lua 5.4 embedded, smsend
-- linked in) whose admin script requests and verifies a PIN with ops polled once per tick. Against
-- the sandbox slowed to 2 s per call, the host's worst gap between ticks stays under 60 ms and the
-- PIN arrives; with the blocking calls (GAMELOOP_BLOCKING=1) the same measure shows the freeze.
--
-- The host runs as a child with its stdin a pipe held by the spec (io.popen(cmd, "w")): the spec
-- waits until the sandbox has sent the PIN, then types it. The host prints its figures in one line
-- ("host: ticks=N seconds=S worst_gap_ms=G longest_tick_ms=T ..."), parsed here.
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"
local ops = require "spec.support.ops"
local q = util.sh_quote

local ROOT = helpers.repo_root
local HOST = ROOT .. "/build/gameloop/host"
local SCRIPT = "examples/gameloop/admin.lua"
local TYPED, PHONE = "+39 347 123 4567", ops.RCPT

-- Only what the host needs: the runner's Lua paths and proxy variables stay out.
local CLEAN_ENV = "env -i PATH=/usr/bin:/bin"

describe("game loop host (examples/gameloop)", function()
  local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })
  local gw = ops.bind(sb)
  local tmp

  setup(function() tmp = helpers.tmpdir("smsend-gameloop") end)
  teardown(function() os.execute("rm -rf " .. q(tmp)) end)

  -- Runs the host against base_url; typing(pin) gives what is typed once the PIN was sent (nil if
  -- it did not come within wait_pin seconds). Returns the output, the exit status, the PIN and the
  -- figures { ticks =, seconds =, worst_gap_ms =, longest_tick_ms = }.
  local function run_host(base_url, typing, env, wait_pin)
    local out_file, rc_file = tmp .. "/out", tmp .. "/rc"
    local words = { CLEAN_ENV, "SMSEND_USER_KEY=" .. ops.UK, "SMSEND_ACCESS_TOKEN=" .. ops.TOK,
                    "SMSEND_BASE_URL=" .. q(base_url) }
    for k, v in pairs(env or {}) do words[#words + 1] = k .. "=" .. q(v) end
    local cmd = ("cd %s && %s %s %s wipe_world %s >%s 2>&1; echo $? >%s"):format(q(ROOT), table.concat(words, " "),
      q(HOST), q(SCRIPT), q(TYPED), q(out_file), q(rc_file))
    local p = assert(io.popen(cmd, "w"))
    local deadline, pin = helpers.gettime() + (wait_pin or 10), nil
    repeat
      pin = sb:last_pin(PHONE)
      if not pin then helpers.sleep(0.02) end
    until pin or helpers.gettime() > deadline
    p:write(typing(pin) or "")
    p:close()
    local out = helpers.read_file(out_file) or ""
    local rc = tonumber((helpers.read_file(rc_file) or ""):match("%d+"))
    local fig = {}
    local line = out:match("host: (ticks=[^\n]+)") or ""
    for k, v in line:gmatch("([%a_]+)=([%d.]+)") do fig[k] = tonumber(v) end
    return out, rc, pin, fig
  end

  local function right(pin) return pin and pin .. "\n" end
  local function wrong_then_right(pin)
    return pin and ((pin == "000000" and "111111" or "000000") .. "\n" .. pin .. "\n")
  end

  it("builds warning-free with make -C examples/gameloop", function()
    os.remove(HOST)
    local ok, text = util.sh(("make -C %s"):format(q(ROOT .. "/examples/gameloop")))
    assert.is_true(ok, text)
    assert.matches("%-Wall %-Wextra %-Werror", text)
    assert.matches("libsmsend%.a", text)
    assert.is_nil(text:find("warning:", 1, true), text)
    assert.is_string(helpers.read_file(HOST), "no host binary at " .. HOST)
  end)

  it("keeps its 20 Hz tick (worst gap under 60 ms) while the gateway takes 2 s per call, and the PIN arrives", function()
    assert.is_string(helpers.read_file(HOST), "build the host first")
    -- The time in the script (longest_tick_ms) is the module's part of a tick and must stay small in
    -- every run; the gap also holds the OS's scheduling of the host, which on a loaded machine can
    -- add tens of ms to one sleep: the best of up to 3 runs has to stay under 60 ms.
    local best, runs = math.huge, {}
    for attempt = 1, 3 do
      sb:reset()
      local out, rc, pin, fig = run_host(sb.url_for("slow-2000"), right)
      assert.is_string(pin, "no PIN was sent: " .. out)
      assert.equal(0, rc, out)
      assert.matches("admin: PIN sent in 2%.%d%d s", out)
      assert.matches("admin: PIN verified\nhost: performing wipe_world", out)
      assert.is_nil(out:find(pin, 1, true), "the PIN must never be printed")
      -- two calls of 2 s each: about 80 ticks
      assert.is_true(fig.seconds >= 4, out)
      assert.is_true(fig.ticks >= 0.9 * fig.seconds * 20, out)
      assert.is_true(fig.longest_tick_ms < 20, out)
      assert.equal("2fa/request 2fa/verify", gw.paths())
      local sms = sb:sms()
      assert.equal(1, #sms)
      assert.equal("Code " .. pin .. " confirms wipe_world. Do not share it.", sms[1].text)
      runs[attempt] = ("worst_gap_ms=%s longest_tick_ms=%s"):format(fig.worst_gap_ms, fig.longest_tick_ms)
      best = math.min(best, fig.worst_gap_ms)
      if best < 60 then break end
    end
    assert.is_true(best < 60, "worst tick gap in every run: " .. table.concat(runs, "; "))
  end)

  it("takes a wrong PIN and then the right one, tick after tick", function()
    local out, rc, pin, fig = run_host(sb.base_url, wrong_then_right)
    assert.is_string(pin, out)
    assert.equal(0, rc, out)
    assert.matches("admin: wrong PIN, 2 tries remaining", out)
    assert.matches("host: performing wipe_world", out)
    assert.is_true(fig.worst_gap_ms < 60, out)
    assert.equal("2fa/request 2fa/verify 2fa/verify", gw.paths())
  end)

  it("refuses when the console closes before a PIN is typed, and when the gateway fails", function()
    local out, rc = run_host(sb.base_url, function() return "" end)
    assert.equal(1, rc, out)
    assert.matches("host: wipe_world refused: no PIN typed", out)
    assert.is_nil(out:find("host: performing", 1, true))
    sb:reset()
    out, rc = run_host(sb.url_for("status-500"), function() return "" end, nil, 0.5)
    assert.equal(1, rc, out)
    assert.matches("host: wipe_world refused: cannot send the PIN %(server_error%)", out)
  end)

  it("shows the freeze when the script uses the blocking calls instead (GAMELOOP_BLOCKING=1)", function()
    local out, rc, _, fig = run_host(sb.url_for("slow-2000"), right, { GAMELOOP_BLOCKING = "1" })
    assert.equal(0, rc, out)
    -- the whole 2 s exchange happens inside one tick: the measure that passes above can fail
    assert.is_true(fig.worst_gap_ms >= 1900, out)
    assert.is_true(fig.longest_tick_ms >= 1900, out)
  end)
end)
