-- install_spec.lua — `make install PREFIX=...` puts both builds, the Lua helpers and the CLI in
-- place and they work from there; `make uninstall` removes exactly what it installed. A user's
-- make compiles with their CFLAGS and without -Werror.
local util = require "spec.support.util"
if util.skip_unless_packaging("make install") then return end
local helpers = require "spec.support.helpers"

local sh = util.sh

describe("make install / uninstall", function()
  it("installs a working module and CLI, and removes them again", function()
    local prefix = helpers.tmpdir("smsend-install")
    local files = { "/lib/lua/5.4/smsend.so", "/lib/lua/5.1/smsend.so", "/bin/smsend",
                    "/share/lua/5.4/smsend/resty.lua", "/share/lua/5.1/smsend/resty.lua" }
    -- a fresh build, as a user's: no -Werror from a surrounding make check, their own CFLAGS
    local build = helpers.tmpdir("smsend-install-build")
    local ok, out = sh("env -u WERROR -u MAKEFLAGS -u MAKELEVEL make --no-print-directory install PREFIX="
      .. util.sh_quote(prefix) .. " BUILD=" .. util.sh_quote(build) .. " CFLAGS='-O1 -g'")
    os.execute("rm -rf " .. util.sh_quote(build))
    assert.is_true(ok, out)
    local _, compiles = ("\n" .. out):gsub("\n[^\n]*%-o [^\n]*smsend%.so [^\n]*", "")
    assert.equal(2, compiles, out)
    assert.matches("%-Wall %-Wextra [^\n]*%-O1 %-g", out)
    assert.is_nil(out:find("-Werror", 1, true), out)
    assert.is_nil(out:find("-O2", 1, true), out)
    for _, f in ipairs(files) do
      assert.is_truthy(io.open(prefix .. f), f .. " was not installed")
    end
    local sb = helpers.start_sandbox{ tls = false }
    local env = "env -u SMSEND_CPATH LUA_CPATH_5_4=" .. util.sh_quote(prefix .. "/lib/lua/5.4/?.so")
      .. " LUA_PATH_5_4=" .. util.sh_quote(prefix .. "/share/lua/5.4/?.lua;;")
      .. " SMSEND_USER_KEY=SBXUSER SMSEND_ACCESS_TOKEN=SBXTOKEN SMSEND_BASE_URL=" .. util.sh_quote(sb.base_url)
    local ok2, out2 = sh("cd / && " .. env .. " lua5.4 -e 'local s = require \"smsend\"; local r = require \"smsend.resty\";"
      .. " print(package.searchpath(\"smsend\", package.cpath), r.request_pin{ recipient = \"+393471234567\" }.ok)'")
    local ok3, out3 = sh("cd / && " .. env .. " " .. util.sh_quote(prefix .. "/bin/smsend") .. " request-pin +393471234567")
    sb:stop()
    assert.is_true(ok2, out2)
    assert.equal(prefix .. "/lib/lua/5.4/smsend.so\ttrue\n", out2)
    assert.is_true(ok3, out3)
    assert.matches("PIN sent", out3)
    ok, out = sh("make --no-print-directory uninstall PREFIX=" .. util.sh_quote(prefix))
    assert.is_true(ok, out)
    for _, f in ipairs(files) do
      assert.is_nil(io.open(prefix .. f), f .. " was left behind")
    end
    os.execute("rm -rf " .. util.sh_quote(prefix))
  end)
end)
