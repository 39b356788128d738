-- types_spec.lua — types/smsend_resty.lua declares exactly the functions smsend.resty exports
-- (types/smsend.lua is checked against the C module in sms_spec.lua).
if require("spec.support.util").skip_unless_packaging("types") then return end
package.path = "./lua/?.lua;" .. package.path

describe("types/smsend_resty.lua", function()
  it("declares every function of smsend.resty and nothing else", function()
    local resty = require "smsend.resty"
    local f = assert(io.open("types/smsend_resty.lua"))
    local text = f:read("*a")
    f:close()
    local declared, exported = {}, {}
    for name in text:gmatch("\nfunction resty%.([%w_]+)%(") do declared[name] = true end
    for k, v in pairs(resty) do
      if type(v) == "function" then exported[k] = true end
    end
    assert.same(exported, declared)
    assert.is_truthy(next(exported))
    assert.is_truthy(text:find("---@field DEFAULT_POOL string", 1, true))
    assert.equal("string", type(resty.DEFAULT_POOL))
  end)
end)
