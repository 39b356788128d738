-- Shared helpers for the busted specs: start/stop the local sandbox gateway
-- and talk HTTP to it with luasocket (independent of the C module).
--
--   local helpers = dofile("spec/support/helpers.lua")
--   describe("...", function()
--     local sb = helpers.sandbox_fixture{ session_ttl = 300 }  -- setup/teardown
--     it("...", function() local r = helpers.http("GET", sb.base_url .. "login?...") end)
--   end)

local socket = require "socket"
local cjson = require "cjson"

local function script_dir()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or "spec/support/helpers.lua"
  return file:match("^(.*)/[^/]*$") or "."
end

local helpers = {}

helpers.support_dir = script_dir()
helpers.sandbox = dofile(helpers.support_dir .. "/../../sandbox/launch.lua")
helpers.repo_root = helpers.sandbox.repo_root
helpers.shell_quote = helpers.sandbox.shell_quote
helpers.DEFAULT_USER = helpers.sandbox.DEFAULT_USERS[1]

local shq = helpers.shell_quote
local capture = helpers.sandbox.capture

helpers.read_file = helpers.sandbox.read_file

function helpers.command_exists(name)
  return capture("command -v " .. shq(name) .. " 2>/dev/null") ~= ""
end

-- A fresh directory under /tmp (or $TMPDIR).
function helpers.tmpdir(prefix)
  local d = helpers.sandbox.tmpdir(prefix or "smsend-spec")
  assert(d, "mktemp -d failed")
  return d
end

-- Certificates are cached per user across runs (generation is cheap anyway).
function helpers.cert_cache_dir()
  local env = os.getenv("SMSEND_SANDBOX_CERT_CACHE")
  if env and env ~= "" then return env end
  local uid = capture("id -u"):gsub("%s+$", "")
  local dir = "/tmp/smsend-sandbox-certs-" .. uid
  -- only trust a cache dir that we own (it lives in a shared /tmp)
  local q = shq(dir)
  if helpers.sandbox.run("test ! -e " .. q .. " || { test -O " .. q .. " && test ! -L " .. q .. "; }") then
    return dir
  end
  return nil
end

local running = {}

-- Start a sandbox in a new temp dir (removed by sb:stop() unless
-- SMSEND_SANDBOX_KEEP=1). opts are those of sandbox.start; `console`
-- defaults to <dir>/console.log.
function helpers.start_sandbox(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local dir = o.dir or helpers.tmpdir("smsend-sandbox")
  if not o.dir then
    -- our temp dir: sb:stop() removes it (keep it with SMSEND_SANDBOX_KEEP=1)
    o.remove_dir = os.getenv("SMSEND_SANDBOX_KEEP") ~= "1"
  end
  o.dir = dir
  if o.console == nil then o.console = dir .. "/console.log" end
  if o.cert_dir == nil and o.tls ~= false then o.cert_dir = helpers.cert_cache_dir() end
  local ok, sb = pcall(helpers.sandbox.start, o)
  if not ok then
    if not opts or not opts.dir then os.execute("rm -rf " .. shq(dir)) end
    error(sb, 2)
  end
  sb.console_file = o.console
  running[#running + 1] = sb
  return sb
end

function helpers.stop_sandbox(sb)
  if not sb then return end
  sb:stop()
  for i, s in ipairs(running) do
    if s == sb then table.remove(running, i) break end
  end
end

function helpers.stop_all()
  while #running > 0 do helpers.stop_sandbox(running[#running]) end
end

-- Inside a describe block: start one sandbox in setup(), stop it in
-- teardown(). Returns a handle that forwards to the running sandbox
-- (sb.base_url, sb:requests(), ...). handle.get() returns the real object.
-- With how = { reset_each = true } the sandbox is also reset before each test.
function helpers.sandbox_fixture(opts, how)
  local current
  local handle = setmetatable({}, {
    __index = function(_, k)
      if k == "get" then return function() return current end end
      assert(current, "sandbox not started (use the handle inside it/before_each)")
      local v = current[k]
      if type(v) == "function" and k ~= "url_for" then
        -- methods: call on the real object whatever `self` was passed
        return function(_, ...) return v(current, ...) end
      end
      return v
    end,
  })
  -- this file is not loaded by busted, so its globals are not in our env
  local busted = require "busted"
  busted.setup(function() current = helpers.start_sandbox(opts) end)
  busted.teardown(function()
    helpers.stop_sandbox(current)
    current = nil
  end)
  if how and how.reset_each then
    busted.before_each(function() current:reset() end)
  end
  return handle
end

-- HTTP ---------------------------------------------------------------------------

-- helpers.http(method, url, {headers=, body=, json=, timeout=, redirect=})
-- → { status=, body=, headers= (lower-case names), json= (decoded or nil), err= }
function helpers.http(method, url, opts)
  opts = opts or {}
  local body = opts.body
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if opts.json ~= nil then
    body = cjson.encode(opts.json)
    headers["content-type"] = headers["content-type"] or "application/json"
  end
  local status, data, resp_headers, err = helpers.sandbox.http_request{
    method = method, url = url, headers = headers, body = body,
    timeout = opts.timeout, redirect = opts.redirect,
  }
  local r = { status = status, body = data, headers = resp_headers or {}, err = err }
  if status and data and data ~= "" then
    local ok, v = pcall(cjson.decode, data)
    if ok then r.json = v end
  end
  return r
end

function helpers.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end))
end

-- GET login/token → user_key, secret (or nil, response)
function helpers.login(base_url, username, password, kind)
  local u = helpers.DEFAULT_USER
  local r = helpers.http("GET", base_url .. (kind or "login") .. "?username="
    .. helpers.urlencode(username or u.username) .. "&password="
    .. helpers.urlencode(password or u.password))
  if r.status ~= 200 then return nil, r end
  local key, secret = r.body:match("^([^;]+);(.+)$")
  return key, secret
end

function helpers.session_headers(user_key, session_key)
  return { user_key = user_key, Session_key = session_key }
end

function helpers.token_headers(user_key, token)
  return { user_key = user_key, Access_token = token }
end

-- Send raw HTTP requests over ONE TCP connection, one after the other
-- (keep-alive). Each request is a string; returns a list of
-- { status=, body=, headers= } (reads Content-Length bodies only).
function helpers.raw_keepalive(port, requests, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", port))
  local out = {}
  for _, req in ipairs(requests) do
    assert(c:send(req))
    local line = assert(c:receive("*l"))
    local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
    local headers = {}
    while true do
      local h = assert(c:receive("*l"))
      if h == "" then break end
      local k, v = h:match("^([^:]+):%s*(.-)%s*$")
      if k then headers[k:lower()] = v end
    end
    local len = tonumber(headers["content-length"] or "0")
    local body = len > 0 and assert(c:receive(len)) or ""
    out[#out + 1] = { status = status, headers = headers, body = body }
  end
  c:close()
  return out
end

-- Send one raw request and read everything until the server closes.
function helpers.raw_exchange(port, request, timeout)
  local c = assert(socket.tcp())
  c:settimeout(timeout or 5)
  assert(c:connect("127.0.0.1", port))
  assert(c:send(request))
  local data, err, partial = c:receive("*a")
  c:close()
  return data or partial, err
end

-- curl exit code and HTTP status for a TLS URL (nil when curl is missing).
function helpers.curl_tls(url, cafile)
  if not helpers.command_exists("curl") then return nil end
  local out = capture("curl -s -o /dev/null -m 5 -w '%{http_code}' "
    .. (cafile and ("--cacert " .. shq(cafile) .. " ") or "")
    .. shq(url) .. "; echo \" $?\"")
  local code, rc = out:match("(%d+)%s+(%d+)")
  return tonumber(rc), tonumber(code)
end

-- The Lua interpreter running these specs (for child processes).
function helpers.lua_interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua5.4"
end

helpers.cjson = cjson
helpers.gettime = socket.gettime
helpers.sleep = socket.sleep

return helpers
