-- exports_spec.lua — every build exports luaopen_smsend and nothing else: the two shared builds,
-- the rock's smsend.so and the static libraries (where any other external symbol would have to
-- start with smsend_). C hosts that define their own buf_init, http_open and json_write link the
-- static libraries, or load smsend.so with -rdynamic, and still get status tables from the module.
local util = require "spec.support.util"
if util.skip_unless_packaging("exports") then return end
local helpers = require "spec.support.helpers"

local sh, shq = util.sh, util.sh_quote
local ROOT = helpers.repo_root
local BUILD = ROOT .. "/build"

-- Names of the symbols a file defines: dynamic (a shared object) or external (an archive).
local function defined(file, kind)
  local flags = kind == "dynamic" and "-D --defined-only" or "-g --defined-only"
  local ok, out = sh("nm " .. flags .. " " .. shq(file))
  assert.is_true(ok, out)
  local names = {}
  for name in out:gmatch("\n?%x+ %a ([%w_.@]+)") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local function pkg(args)
  local ok, out = sh("pkg-config " .. args)
  assert.is_true(ok, out)
  return (out:gsub("\n", " "))
end

describe("exported symbols", function()
  local tmp, sb
  setup(function()
    local ok, out = sh("make -C " .. shq(ROOT) .. " --no-print-directory all static")
    assert(ok, out)
    tmp = helpers.tmpdir("smsend-exports")
    sb = helpers.start_sandbox{ tls = false }
  end)
  teardown(function()
    if sb then sb:stop() end
    if tmp then os.execute("rm -rf " .. shq(tmp)) end
  end)

  it("of build/lua5.4/smsend.so and build/luajit/smsend.so: luaopen_smsend only", function()
    assert.same({ "luaopen_smsend" }, defined(BUILD .. "/lua5.4/smsend.so", "dynamic"))
    assert.same({ "luaopen_smsend" }, defined(BUILD .. "/luajit/smsend.so", "dynamic"))
  end)

  it("of the rock's smsend.so: luaopen_smsend only", function()
    local tree = tmp .. "/rocktree"
    local ok, out = sh("cd " .. shq(ROOT) .. " && luarocks --lua-version 5.4 --tree " .. shq(tree)
      .. " make rockspec/smsend-scm-1.rockspec")
    assert.is_true(ok, out)
    assert.same({ "luaopen_smsend" }, defined(tree .. "/lib/lua/5.4/smsend.so", "dynamic"))
  end)

  it("of the static libraries: luaopen_smsend, and nothing without the smsend_ prefix", function()
    for _, lib in ipairs{ BUILD .. "/libsmsend.a", BUILD .. "/luajit/libsmsend.a" } do
      local names = defined(lib, "static")
      local seen = false
      for _, name in ipairs(names) do
        if name == "luaopen_smsend" then seen = true
        else assert.matches("^smsend_", name, lib .. " exports " .. name) end
      end
      assert.is_true(seen, lib .. " does not define luaopen_smsend")
    end
  end)

  -- The host runs this script, which calls the module; the host then calls its own functions.
  local SCRIPT = [[
    local smsend = require "smsend"
    local st = smsend.request_pin{ user_key = "SBXUSER", access_token = "SBXTOKEN",
                                   base_url = os.getenv("URL"), recipient = "+393471234567",
                                   messageBody = "Code %PIN% " .. ("é"):rep(20) }
    local seg = smsend.sms_segments("Code %PIN%")
    print("module:", type(st), st.ok, st.status, st.body, seg.encoding)
  ]]
  local EXPECTED = 'module:\ttable\ttrue\t200\t{"status":"OK"}\tGSM%-7\nhost: 11 22 33\n$'

  local function build_and_run(name, compile, cpath)
    local host = tmp .. "/" .. name
    local ok, out = sh("cc -std=c11 -Wall -Wextra -Werror -I" .. shq(ROOT .. "/include") .. " -o " .. shq(host)
      .. " " .. shq(ROOT .. "/spec/support/clash_host.c") .. " " .. compile)
    assert.is_true(ok, out)
    local script = tmp .. "/" .. name .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write(cpath and ("package.cpath = %q\n"):format(cpath) or "package.cpath = '/nonexistent/?.so'\n", SCRIPT)
    f:close()
    sb:reset()
    ok, out = sh("URL=" .. shq(sb.base_url) .. " " .. shq(host) .. " " .. shq(script))
    assert.is_true(ok, out)
    assert.matches(EXPECTED, out)
    assert.equal(1, #sb:requests())
  end

  for _, v in ipairs{ { name = "Lua 5.4", lua = "lua5.4", lib = "libsmsend.a", so = "lua5.4" },
                      { name = "LuaJIT", lua = "luajit", lib = "luajit/libsmsend.a", so = "luajit" } } do
    it("let a " .. v.name .. " host with its own buf_init, http_open and json_write link libsmsend.a", function()
      build_and_run("static-" .. v.lua, "-DCLASH_STATIC " .. pkg("--cflags " .. v.lua) .. " " .. shq(BUILD .. "/" .. v.lib)
        .. " " .. pkg("--libs " .. v.lua .. " libcurl hiredis") .. " -pthread -lm")
    end)

    it("let a " .. v.name .. " host built with -rdynamic and those functions load smsend.so", function()
      build_and_run("dynamic-" .. v.lua, "-rdynamic " .. pkg("--cflags --libs " .. v.lua) .. " -lm -ldl",
        BUILD .. "/" .. v.so .. "/?.so")
    end)
  end
end)
