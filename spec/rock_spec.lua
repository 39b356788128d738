-- rock_spec.lua — the rockspec passes luarocks lint, says what it supports, and `make rock` (the
-- plain `luarocks make` for Lua 5.4 and for LuaJIT) installs a module, the Lua helpers and the
-- CLI that work from a local tree, without -Werror and without leaving anything in the checkout.
local util = require "spec.support.util"
if util.skip_unless_packaging("rockspec") then return end
local helpers = require "spec.support.helpers"

local sh, shq = util.sh, util.sh_quote
local ROOT = helpers.repo_root
local ROCKSPEC = "rockspec/smsend-scm-1.rockspec"

-- The rockspec is Lua: its fields, read in an empty environment.
local function rockspec()
  local f = assert(io.open(ROOT .. "/" .. ROCKSPEC))
  local text = f:read("*a")
  f:close()
  local env = {}
  local chunk = assert((loadstring or load)(text, "=rockspec", "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env
end

describe("rockspec", function()
  it("passes luarocks lint", function()
    local ok, out = sh("cd " .. shq(ROOT) .. " && luarocks lint " .. ROCKSPEC)
    assert.is_true(ok, out)
  end)

  it("is for Linux and Lua 5.1 to 5.4, and installs every Lua helper and both commands", function()
    local r = rockspec()
    assert.same({ "linux" }, r.supported_platforms)
    assert.same({ "lua >= 5.1, < 5.5" }, r.dependencies)
    local listed = {}
    for _, file in pairs(r.build.install.lua) do listed[file] = true end
    local ok, out = sh("cd " .. shq(ROOT) .. " && find lua -name '*.lua'")
    assert.is_true(ok, out)
    for file in out:gmatch("%S+") do
      assert.is_true(listed[file], file .. " is not installed by the rock")
    end
    assert.same({ smsend = "bin/smsend", ["smsend-sandbox"] = "bin/smsend-sandbox" }, r.build.install.bin)
    -- luaopen_smsend is the only export, and the user's flags never get -Werror
    assert.matches("%-fvisibility=hidden", r.build.install_variables.CFLAGS)
    assert.equal("", r.build.install_variables.WERROR)
  end)

  it("builds and installs for Lua 5.4 and LuaJIT, leaving nothing in the tree, and works from there", function()
    local tree = helpers.tmpdir("smsend-rocktree")
    local stamp = tree .. "/stamp"
    assert.is_true(sh("touch " .. shq(stamp) .. " && sleep 1"))
    local ok, out = sh("cd " .. shq(ROOT) .. " && env -u WERROR make --no-print-directory rock ROCK_TREE=" .. shq(tree))
    assert.is_true(ok, out)
    -- the first line is the plain command a user types (with a tree)
    assert.matches("luarocks %-%-lua%-version 5%.4 %-%-tree %S+ make " .. ROCKSPEC:gsub("%p", "%%%0") .. "\n", out)
    assert.matches("%-Wall %-Wextra", out)
    assert.is_nil(out:find("-Werror", 1, true), out)
    local _, left = sh("cd " .. shq(ROOT) .. " && find . -path ./.git -prune -o -newer " .. shq(stamp) .. " -type f -print")
    assert.equal("", left, "luarocks left build products in the tree")

    local sb = helpers.start_sandbox{ tls = false }
    local env = "cd / && env -u SMSEND_CPATH -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_PATH -u LUA_PATH_5_4"
      .. " SMSEND_USER_KEY=SBXUSER SMSEND_ACCESS_TOKEN=SBXTOKEN SMSEND_BASE_URL=" .. shq(sb.base_url)
    local results = {}
    for _, v in ipairs{ { lua = "lua5.4", abi = "5.4" }, { lua = "luajit", abi = "5.1" } } do
      local t = tree .. "/" .. v.abi
      local so = t .. "/lib/lua/" .. v.abi .. "/smsend.so"
      local code = ("package.cpath = %q; package.path = %q .. package.path;"):format(
        t .. "/lib/lua/" .. v.abi .. "/?.so", t .. "/share/lua/" .. v.abi .. "/?.lua;")
        .. "local s = require 'smsend'; local r = require 'smsend.resty';"
        .. "print(package.searchpath and package.searchpath('smsend', package.cpath) or package.cpath,"
        .. " r.request_pin{ recipient = '+393471234567' }.ok)"
      local ok2, out2 = sh(env .. " " .. v.lua .. " -e " .. shq(code))
      results[#results + 1] = { v = v, so = so, ok = ok2, out = out2 }
    end
    local ok3, out3 = sh(env .. " " .. shq(tree .. "/5.4/bin/smsend") .. " request-pin +393471234567")
    sb:stop()
    os.execute("rm -rf " .. shq(tree))
    for _, r in ipairs(results) do
      assert.is_true(r.ok, r.out)
      if r.v.lua == "lua5.4" then
        assert.equal(r.so .. "\ttrue\n", r.out)
      else  -- LuaJIT has no package.searchpath: the tree's path comes first
        assert.matches("\ttrue\n$", r.out)
      end
    end
    assert.is_true(ok3, out3)
    assert.matches("PIN sent", out3)
  end)
end)
