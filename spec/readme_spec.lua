-- readme_spec.lua — every ```lua example in README.md and docs/*.md runs, unchanged, against the
-- sandbox (credentials from SMSEND_* variables, as the docs tell users); the option, error-code
-- and status-field tables of docs/ list exactly what the module has; README stays a front door.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local ROOT = helpers.repo_root

local function read(path)
  local f = assert(io.open(ROOT .. "/" .. path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function lua_blocks(text)
  local blocks = {}
  for code in ("\n" .. text):gmatch("\n```lua\n(.-)\n```") do blocks[#blocks + 1] = code end
  return blocks
end

local function documents()
  local ok, out = util.sh("cd " .. util.sh_quote(ROOT) .. " && ls docs/*.md")
  assert(ok, out)
  local list = { "README.md" }
  for path in out:gmatch("%S+") do list[#list + 1] = path end
  return list
end

-- The first column of the Markdown table whose header row starts with `| first |`: every
-- `name` in backquotes in that column, as a set.
local function table_names(text, first)
  local names, inside = {}, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if not inside then
      inside = line:match("^|%s*" .. first .. "%s*|") ~= nil
    elseif line:match("^|") then
      local cell = line:match("^|([^|]*)|")
      if not cell:match("^%s*%-%-%-") then
        for name in cell:gmatch("`([%w_]+)`") do names[name] = true end
      end
    else
      break
    end
  end
  return names
end

-- What the module has, from types/smsend.lua (kept equal to the module by sms_spec.lua and the
-- options spec): the fields of a ---@class, or the strings of an ---@alias.
local TYPES = read("types/smsend.lua")
local function declared(tag, name, item)
  local body = TYPES:match("\n%-%-%-@" .. tag .. " " .. name:gsub("%.", "%%.") .. "\n(.-)\n[^%-]")
  assert(body, "no ---@" .. tag .. " " .. name .. " in types/smsend.lua")
  local names = {}
  for n in body:gmatch(item) do names[n] = true end
  return names
end
local function class_fields(class) return declared("class", class, "%-%-%-@field ([%w_]+)") end
local function alias_strings(alias) return declared("alias", alias, '%-%-%-| "([%w_]+)"') end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

describe("docs", function()
  local sb
  setup(function() sb = helpers.start_sandbox{ tls = false } end)
  teardown(function() if sb then sb:stop() end end)

  it("README.md is a front door of at most 12 KB that links every document in docs/", function()
    local readme = read("README.md")
    assert.is_true(#readme <= 12 * 1024, ("README.md is %d bytes"):format(#readme))
    for _, path in ipairs(documents()) do
      if path ~= "README.md" then
        assert.is_truthy(readme:find("(" .. path .. ")", 1, true), path .. " is not linked from README.md")
      end
    end
  end)

  it("list exactly the module's options in docs/api.md", function()
    local documented = table_names(read("docs/api.md"), "option")
    assert.same(class_fields("smsend.options"), documented)
    assert.is_true(count(documented) >= 16)
    -- and the module accepts each one by that name (a wrong value, not an unknown option)
    local smsend = require "smsend"
    for name in pairs(documented) do
      local c, err = smsend.new{ [name] = {} }
      assert.is_nil(c)
      assert.is_nil(err:find("unknown option", 1, true), name .. ": " .. err)
    end
    local _, err = smsend.new{ not_an_option = 1 }
    assert.equal("unknown option 'not_an_option'", err)
  end)

  it("list exactly the module's error codes in docs/errors.md", function()
    local documented = table_names(read("docs/errors.md"), "code")
    assert.same(alias_strings("smsend.error_code"), documented)
    assert.is_true(count(documented) >= 17)
  end)

  it("list exactly the fields of the status table in docs/api.md", function()
    assert.same(class_fields("smsend.status"), table_names(read("docs/api.md"), "field | type"))
  end)

  local env = function()
    return { SMSEND_USER_KEY = "SBXUSER", SMSEND_ACCESS_TOKEN = "SBXTOKEN", SMSEND_BASE_URL = sb.base_url }
  end
  local total = 0
  for _, path in ipairs(documents()) do
    for i, code in ipairs(lua_blocks(read(path))) do
      total = total + 1
      local needs_54 = code:find("<close>", 1, true) ~= nil
      local title = code:match("[^\n]*smsend[%.:][%w_]+") or code:match("^[^\n]*")
      it(("%s example %d runs (%s)"):format(path, i, title), function()
        if needs_54 and type(jit) == "table" then
          pending("uses Lua 5.4's <close>; runs under Lua 5.4")
          return
        end
        sb:reset()
        local out, ok = util.run_lua(code .. "\nio.write('DOC-EXAMPLE-DONE')", env())
        assert.is_truthy(ok, out)
        assert.matches("DOC%-EXAMPLE%-DONE$", out)
      end)
    end
  end

  it("have their examples", function()
    assert.is_true(total >= 10, total .. " examples")
  end)
end)
