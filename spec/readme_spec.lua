-- readme_spec.lua — every ```lua example in README.md runs, unchanged, against the sandbox.
-- Examples get their credentials from SMSEND_* variables, as the README tells users to.
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local function lua_blocks(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  local blocks = {}
  for code in text:gmatch("\n```lua\n(.-)\n```") do blocks[#blocks + 1] = code end
  return blocks
end

describe("README examples", function()
  local sb
  setup(function() sb = helpers.start_sandbox{ tls = false } end)
  teardown(function() if sb then sb:stop() end end)

  local blocks = lua_blocks("README.md")

  it("are there", function()
    assert.is_true(#blocks >= 5)
  end)

  for i, code in ipairs(blocks) do
    local needs_54 = code:find("<close>", 1, true) ~= nil
    it("example " .. i .. " runs (" .. (code:match("[^\n]*smsend%.[%w_]+") or code:match("^[^\n]*")) .. ")", function()
      if needs_54 and type(jit) == "table" then
        pending("uses Lua 5.4's <close>; runs under Lua 5.4")
        return
      end
      local out, ok = util.run_lua(code .. "\nio.write('README-EXAMPLE-DONE')", {
        SMSEND_USER_KEY = "SBXUSER", SMSEND_ACCESS_TOKEN = "SBXTOKEN", SMSEND_BASE_URL = sb.base_url,
      })
      assert.is_truthy(ok, out)
      assert.matches("README%-EXAMPLE%-DONE$", out)
    end)
  end
end)
