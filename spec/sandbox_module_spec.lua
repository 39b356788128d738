-- sandbox_module_spec.lua — require "smsend.sandbox" as a user's tests use it: the fields and
-- sb:options() work with smsend.new over HTTP and HTTPS, last_pin in any spelling, fault_next,
-- expire_sessions, stopping (stop, <close>, collection, the end of the process), and the
-- examples/testing suite run by busted under this interpreter. (Installed: cli_spec.lua.)
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end
package.path = "./lua/?.lua;" .. package.path

local smsend = require "smsend"
local sandbox = require "smsend.sandbox"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local q = util.sh_quote
local RCPT = "+393471234567"

local function gone(sb, seconds)
  local deadline = os.time() + (seconds or 5)
  while sandbox.pid_alive(sb.pid) and os.time() <= deadline do os.execute("sleep 0.05") end
  return not sandbox.pid_alive(sb.pid)
end

local function exists(path)
  local _, out = util.sh("test -e " .. q(path) .. " && echo yes || echo no")
  return out == "yes\n"
end

describe("smsend.sandbox", function()
  describe("a plain HTTP sandbox", function()
    local sb
    setup(function() sb = sandbox.start() end)
    teardown(function() sb:stop() end)
    before_each(function() sb:reset() end)

    it("has the account fields, no cainfo, and options for smsend.new", function()
      assert.matches("^http://127%.0%.0%.1:%d+/API/v1%.0/REST/$", sb.base_url)
      assert.equal("SBXUSER", sb.user_key)
      assert.equal("SBXTOKEN", sb.access_token)
      assert.equal("sandbox", sb.username)
      assert.equal("sandbox-pass", sb.password)
      assert.is_nil(sb.cainfo)
      assert.same({ base_url = sb.base_url, user_key = "SBXUSER", access_token = "SBXTOKEN" }, sb:options())
      assert.same({ base_url = sb.base_url, username = "sandbox", password = "sandbox-pass", timeout = 3 },
                  sb:options("password", { timeout = 3 }))
      assert.same({ base_url = sb.base_url, user_key = "SBXUSER", access_token = "SBXTOKEN", min_interval = 5 },
                  sb:options{ min_interval = 5 })
      assert.has_error(function() sb:options("certificate") end)
      assert.is_true(assert(smsend.new(sb:options())):request_pin{ recipient = RCPT }.ok)
      assert.is_true(assert(smsend.new(sb:options("password"))):request_pin{ recipient = RCPT }.ok)
      assert.equal("2fa/request login 2fa/request", sb:paths())
      assert.equal(2, #sb:requests("2fa/request"))
      assert.equal("login", sb:requests("login")[1].path)
    end)

    it("last_pin finds the PIN from any spelling of the number, nil for another number", function()
      local c = assert(smsend.new(sb:options()))
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      local pin = sb:sms()[1].pin
      for _, spelling in ipairs{ RCPT, "+39 347 123 4567", "0039 347-123-4567", "+39.347.123.4567",
                                 "(+39) 347 1234567", "+39\194\160347\194\160123\194\1604567" } do
        assert.equal(pin, sb:last_pin(spelling), spelling)
      end
      assert.is_nil(sb:last_pin("+39 347 000 0000"))
      assert.has_error(function() sb:last_pin(393471234567) end)
    end)

    it("fault_next makes only the next request misbehave; an unknown mode raises", function()
      local c = assert(smsend.new(sb:options{ timeout = 2 }))
      for mode, code in pairs{ drop = "network_error", ["status-503"] = "server_error", garbage = "bad_response",
                               ratelimit = "rate_limited", badjson = "bad_response" } do
        sb:fault_next(mode)
        assert.equal(code, c:request_pin{ recipient = RCPT }.error, mode)
        assert.is_true(c:request_pin{ recipient = RCPT }.ok, "after " .. mode)
      end
      assert.has_error(function() sb:fault_next("explode") end, 'smsend sandbox: fault_next("explode"): fault_next must be a fault name')
      assert.has_error(function() sb:fault_next() end)
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
    end)

    it("expire_sessions makes the next call answer 401, and a password client logs in again", function()
      -- sessions are the process's while a client holds them: start from none
      collectgarbage()
      collectgarbage()
      local c = assert(smsend.new(sb:options("password")))
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      sb:expire_sessions()
      assert.is_true(c:request_pin{ recipient = RCPT }.ok)
      assert.equal("login 2fa/request 2fa/request login 2fa/request", sb:paths())
    end)
  end)

  it("with tls = true: base_url is HTTPS, trusted through cainfo", function()
    local sb = sandbox.start{ tls = true }
    finally(function() sb:stop() end)
    assert.matches("^https://127%.0%.0%.1:%d+/API/v1%.0/REST/$", sb.base_url)
    assert.matches("^http://", sb.http_url)
    assert.is_truthy(io.open(sb.cainfo))
    assert.is_true(assert(smsend.new(sb:options())):request_pin{ recipient = RCPT }.ok)
    assert.equal("https", sb:requests()[1].scheme)
    local without = assert(smsend.new{ base_url = sb.base_url, user_key = sb.user_key, access_token = sb.access_token })
    assert.equal("tls_failed", without:request_pin{ recipient = RCPT }.error)
  end)

  describe("stops", function()
    it("on stop(), once, removing its directory", function()
      local sb = sandbox.start()
      assert.is_true(exists(sb.dir))
      sb:stop()
      assert.is_true(gone(sb, 0))
      assert.is_false(exists(sb.dir))
      sb:stop()
    end)

    it("when collected", function()
      local sb = sandbox.start()
      local probe = { pid = sb.pid, dir = sb.dir }
      sb = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_true(gone(probe, 0))
      assert.is_false(exists(probe.dir))
    end)

    if _VERSION == "Lua 5.4" and not jit then
      it("at the end of a <close> block", function()
        local probe = assert(load([[
          local sandbox = ...
          local sb <close> = sandbox.start()
          return { pid = sb.pid, dir = sb.dir }
        ]]))(sandbox)
        assert.is_true(gone(probe, 0))
        assert.is_false(exists(probe.dir))
      end)
    end

    it("when the process that started it ends, normally or by os.exit", function()
      for _, ending in ipairs{ "", "os.exit(3)" } do
        local out = util.run_lua(([[
          local sb = require("smsend.sandbox").start()
          io.write(sb.pid, " ", sb.dir, "\n")
          io.stdout:flush()
          %s
        ]]):format(ending))
        local pid, dir = out:match("^(%d+) (%S+)$")
        assert.is_truthy(pid, out)
        local probe = { pid = pid }
        assert.is_true(gone(probe, 3), "nginx outlived its process (" .. (ending ~= "" and ending or "normal end") .. ")")
        assert.is_false(exists(dir))
      end
    end)
  end)

  it("runs the examples/testing suite: a user's spec of their own login flow", function()
    local interp = util.interpreter()
    if interp:find("/", 1, true) and interp:sub(1, 1) ~= "/" then -- e.g. make asan's build/asan/lua
      interp = helpers.repo_root .. "/" .. interp
    end
    -- Lua 5.4 prefers LUA_PATH_5_4 over LUA_PATH: leave none of those set
    local luav = type(jit) == "table" and "" or "_" .. _VERSION:match("%d+%.%d+"):gsub("%.", "_")
    local build = cpath or (helpers.repo_root .. "/build/" .. (type(jit) == "table" and "luajit" or "lua5.4") .. "/?.so")
    local cmd = "cd " .. q(helpers.repo_root .. "/examples/testing") .. " && env -u LUA_PATH" .. luav
      .. " -u LUA_CPATH" .. luav .. " -u SMSEND_CPATH LUA_PATH=" .. q(helpers.repo_root .. "/lua/?.lua;;")
      .. " LUA_CPATH=" .. q(build .. ";;") .. " " .. interp .. " /usr/bin/busted -o plainTerminal"
    local _, out = util.sh(cmd)
    assert.matches("5 successes / 0 failures / 0 errors / 0 pending", out)
  end)
end)
