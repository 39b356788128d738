-- ops.lua — what the specs of the pollable calls share (ops, luv, cqueues, gameloop): clients for a
-- sandbox fixture, and what reached the gateway (requests by path, connections used).
--
--   local ops = require "spec.support.ops"
--   local sb = helpers.sandbox_fixture({ tls = false }, { reset_each = true })
--   local gw = ops.bind(sb)
--   local c = gw.client{ base_url = sb.url_for("slow-500") }   -- token credentials, timeout 5
--   assert.equal(1, gw.recorded("2fa/request"))

local M = {
  UK = "SBXUSER", TOK = "SBXTOKEN",          -- the sandbox's default user
  USER = "sandbox", PASS = "sandbox-pass",
  RCPT = "+393471234567",
}

local function merged(base, extra)
  for k, v in pairs(extra or {}) do base[k] = v end
  return base
end

function M.bind(sb)
  local gw = {}

  -- A client with the token credentials (or username/password when extra has them).
  function gw.client(extra)
    local opts = merged({ user_key = M.UK, access_token = M.TOK, base_url = sb.base_url, timeout = 5 }, extra)
    if opts.username then opts.user_key, opts.access_token = nil, nil end
    return assert(require("smsend").new(opts)) -- required here: the gameloop spec loads no module
  end

  function gw.login_client(extra)
    return gw.client(merged({ username = M.USER, password = M.PASS }, extra))
  end

  -- The recorded gateway requests with that path (every one when path is nil).
  function gw.requests(path)
    return sb:requests(path)
  end

  function gw.recorded(path)
    return #gw.requests(path)
  end

  -- How many connections the recorded requests (with that path) came over.
  function gw.connections(path)
    local seen, n = {}, 0
    for _, r in ipairs(gw.requests(path)) do
      if not seen[r.connection] then seen[r.connection], n = true, n + 1 end
    end
    return n
  end

  -- "login 2fa/request ..." in the order they came.
  function gw.paths()
    local out = {}
    for _, r in ipairs(sb:requests()) do out[#out + 1] = r.path end
    return table.concat(out, " ")
  end

  return gw
end

-- require(name), or nil after a pending test in a describe block `title` naming the Debian package
-- that brings it for this interpreter (then the spec file returns early).
function M.optional(name, deb, title)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  local busted = require "busted"
  local lua = rawget(_G, "jit") and "LuaJIT" or _VERSION
  busted.describe(title, function()
    busted.pending(name .. " is not installed for this interpreter (" .. lua .. "): apt-get install " .. deb)
  end)
  return nil
end

-- A known bug in src/, as the Makefile's hardening notes have them: the test body runs; while it
-- fails the test is pending with what went wrong, and once it passes it errors, so the wrapper is
-- removed when the bug is fixed. Inside it(), passing the test's own pending:
--   ops.known_bug(pending, "what is wrong", function() ... end)
function M.known_bug(pending, what, body)
  local ok, err = pcall(body)
  if ok then
    error("known bug no longer shows (" .. what .. "): remove ops.known_bug around this test", 2)
  end
  pending("known bug in src/: " .. what .. " -- " .. (tostring(err):gsub("\n.*", "")))
end

-- Numbers +39347000NNNN for tests that need many recipients.
function M.number(i)
  return ("+39347000%04d"):format(i)
end

return M
