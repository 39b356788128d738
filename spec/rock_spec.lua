-- rock_spec.lua — the rockspec builds and installs with luarocks into a local tree for the running
-- interpreter, and the installed module (and only it) loads and talks to the sandbox.
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local is_jit = type(jit) == "table"
local lua_version = is_jit and "5.1" or _VERSION:match("%d+%.%d+")

local sh = util.sh

describe("rockspec", function()
  it("lists every C source in src/", function()
    local f = assert(io.open("rockspec/smsend-scm-1.rockspec"))
    local spec = f:read("*a")
    f:close()
    local ok, out = sh("ls src/*.c")
    assert.is_true(ok)
    local n = 0
    for file in out:gmatch("%S+") do
      n = n + 1
      assert.is_truthy(spec:find('"' .. file .. '"', 1, true), file .. " is missing from the rockspec")
    end
    assert.is_true(n >= 10)
  end)

  it("passes luarocks lint", function()
    local ok, out = sh("luarocks lint rockspec/smsend-scm-1.rockspec")
    assert.is_true(ok, out)
  end)

  it("builds, installs and works from a local tree", function()
    local tree = os.tmpname()
    os.remove(tree)
    local ok, out = sh("make --no-print-directory rock ROCK_TREE=" .. util.sh_quote(tree) .. " 2>&1")
    assert.is_true(ok, out)
    local so = tree .. "/" .. lua_version .. "/lib/lua/" .. lua_version .. "/smsend.so"
    assert.is_truthy(io.open(so), so .. " not installed")
    local sb = helpers.start_sandbox{ tls = false }
    local result = util.run_lua([[
      package.cpath = ]] .. string.format("%q", tree .. "/" .. lua_version .. "/lib/lua/" .. lua_version .. "/?.so") .. [[
      local smsend = require "smsend"
      local st = smsend.request_pin{ user_key = "SBXUSER", access_token = "SBXTOKEN",
                                     base_url = os.getenv("URL"), recipient = "+393471234567" }
      print(package.searchpath and package.searchpath("smsend", package.cpath) or "", st.ok)
    ]], { URL = sb.base_url, SMSEND_CPATH = "" })
    sb:stop()
    os.execute("rm -rf " .. util.sh_quote(tree))
    assert.equal(so .. "\ttrue", result)
  end)
end)
