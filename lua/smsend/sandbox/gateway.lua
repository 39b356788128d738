-- smsend sandbox: the imitation of the smsend REST gateway (/API/v1.0/REST/)
-- and its fault modes (/fault/<name>/...). Runs inside nginx.

local state = require "smsend.sandbox.state"

local M = {}

local BASE = "/API/v1.0/REST/"
local DEFAULT_MESSAGE = "Your verification code is %PIN%"
local PIN_TRIES = 3

-- Request helpers -------------------------------------------------------------

local function read_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if not data then
    local file = ngx.req.get_body_file()
    if file then
      local f = io.open(file, "rb")
      if f then
        data = f:read("*a")
        f:close()
      end
    end
  end
  return data or ""
end

-- Plain copies (no metatable magic: the table returned by get_headers maps a
-- missing "user_key" to "user-key", which the real gateway would not do).
local function plain(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function record(path, fault, body)
  local rec = {
    method = ngx.req.get_method(),
    path = path,
    uri = ngx.var.request_uri,
    query = plain(ngx.req.get_uri_args(200)),
    headers = plain(ngx.req.get_headers(200)),
    body = body,
    connection = tonumber(ngx.var.connection),
    connection_requests = tonumber(ngx.var.connection_requests),
    fault = fault or state.null,
    scheme = ngx.var.scheme,
    server_port = tonumber(ngx.var.server_port),
    time = ngx.now(),
  }
  local d = state.dict.requests
  local n = d:incr("n", 1, 0)
  local ok, err = d:set("r:" .. n, state.encode(rec))
  if not ok then
    state.log(ngx.ERR, "sandbox: cannot record request: " .. tostring(err))
  end
end

-- Responses ---------------------------------------------------------------------

local function send(status, body, ctype)
  ngx.status = status
  ngx.header["Content-Type"] = ctype or "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

local function json(status, tbl)
  return send(status, state.encode(tbl), "application/json")
end

local function json_error(status, msg)
  return json(status, { status = "ERROR", error = msg })
end

-- Authentication --------------------------------------------------------------

local function nonempty_string(v)
  return type(v) == "string" and v ~= ""
end

-- Returns user_key, or nil, status, message.
local function authenticate(refresh)
  local h = plain(ngx.req.get_headers(200))
  local uk, sk, tk = h["user_key"], h["session_key"], h["access_token"]
  if not nonempty_string(uk) or (not nonempty_string(sk) and not nonempty_string(tk)) then
    return nil, 401, "Missing authentication headers (user_key and Session_key or Access_token)"
  end
  if not state.dict.users:get("key:" .. uk) then
    return nil, 404, "Unknown user_key"
  end
  if nonempty_string(sk) then
    local sessions = state.dict.sessions
    if sessions:get(sk) ~= uk then
      return nil, 401, "Invalid or expired session key"
    end
    if refresh then
      sessions:set(sk, uk, state.dict.config:get("session_ttl"))
    end
    return uk
  end
  if state.dict.tokens:get(tk) ~= uk then
    return nil, 401, "Invalid access token"
  end
  return uk
end

-- Endpoints ---------------------------------------------------------------------

local function login(kind, fault)
  if ngx.req.get_method() ~= "GET" then
    return json_error(405, "Method not allowed")
  end
  if fault == "login-garbage" then
    return send(200, "<html>oops</html>", "text/html")
  end
  local args = ngx.req.get_uri_args(100)
  local username, password = args.username, args.password
  if not nonempty_string(username) or type(password) ~= "string" then
    return json_error(400, "Missing or invalid username/password parameter")
  end
  local raw = state.dict.users:get("login:" .. username)
  local user = raw and state.json_decode(raw)
  if not user or user.password ~= password then
    return json_error(404, "Wrong username or password")
  end
  local secret = state.random_hex(16)
  if kind == "token" then
    state.dict.tokens:set(secret, user.user_key)
  else
    state.dict.sessions:set(secret, user.user_key, state.dict.config:get("session_ttl"))
  end
  return send(200, user.user_key .. ";" .. secret, "text/plain")
end

local function checksession()
  if ngx.req.get_method() ~= "GET" then
    return json_error(405, "Method not allowed")
  end
  local uk, status, msg = authenticate(false)
  if uk then
    return send(200, "true", "text/plain")
  elseif status == 401 and not msg:find("^Missing") then
    return send(200, "false", "text/plain")
  end
  return json_error(status, msg)
end

-- Body must be a JSON object (cjson decodes [] and {} alike: look at the text).
local function json_object_body(raw)
  if not raw:match("^%s*{") then return nil end
  local v = state.json_decode(raw)
  if type(v) ~= "table" then return nil end
  return v
end

local function absent(v)
  return v == nil or v == state.null
end

local function recipient_digits(r)
  if type(r) ~= "string" then return nil end
  local d = r:match("^%+(%d+)$") or r:match("^00(%d+)$")
  if d and #d >= 6 and #d <= 15 then return d end
  return nil
end

-- "+39..." and "0039..." are the same number.
local function normalize_recipient(r)
  local d = recipient_digits(r)
  return d and ("+" .. d) or r
end
M.normalize_recipient = normalize_recipient

local function utf8_len(s)
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function valid_sender(s)
  if type(s) ~= "string" or s == "" then return false end
  if s:match("^%d+$") then return #s <= 16 end
  return utf8_len(s) <= 11
end

local function one_line(s)
  return (s:gsub("[%c]", " "))
end

local function request_pin()
  local body = json_object_body(read_body())
  if not body then
    return json_error(400, "Request body must be a JSON object")
  end
  local recipient = body.recipient
  if absent(recipient) then
    return json_error(400, "Missing recipient")
  end
  if not recipient_digits(recipient) then
    return json_error(400, "Invalid recipient: expected + or 00 followed by 6 to 15 digits")
  end
  local sender = body.senderName
  if absent(sender) then
    sender = state.dict.config:get("default_sender")
  elseif not valid_sender(sender) then
    return json_error(400, "Invalid senderName: at most 11 characters or 16 digits")
  end
  local expiry = body.expiry
  if absent(expiry) then
    expiry = 60
  elseif type(expiry) ~= "number" or expiry ~= math.floor(expiry) or expiry <= 0
      or expiry > 2147483647 then
    return json_error(400, "Invalid expiry: expected a positive integer number of minutes")
  end
  local message = body.messageBody
  if absent(message) then
    message = DEFAULT_MESSAGE
  elseif type(message) ~= "string" or message == "" then
    return json_error(400, "Invalid messageBody: expected a non-empty string")
  end

  local pin = state.random_pin()
  local text
  if message:find("%PIN%", 1, true) then
    text = message:gsub("%%PIN%%", pin)
  else
    text = message .. " " .. pin
  end
  local key = normalize_recipient(recipient)
  local now = ngx.now()
  state.dict.pins:set(key, state.encode({
    pin = pin, expires_at = now + expiry * 60, tries = PIN_TRIES,
  }))
  state.dict.pins:set("last:" .. key, pin)

  local sms = state.dict.sms
  local n = sms:incr("n", 1, 0)
  sms:set("s:" .. n, state.encode({
    recipient = recipient, sender = sender, text = text, pin = pin,
    expiry = expiry, time = now,
  }))
  state.console(string.format("SMS to %s from %s: %s",
    one_line(recipient), one_line(sender), one_line(text)))
  return json(200, { status = "OK" })
end

local function verify_pin()
  local body = json_object_body(read_body())
  if not body then
    return json_error(400, "Request body must be a JSON object")
  end
  if not nonempty_string(body.recipient) then
    return json_error(400, "Missing or invalid recipient")
  end
  if not nonempty_string(body.pin) then
    return json_error(400, "Missing or invalid pin (expected a string)")
  end
  local pins = state.dict.pins
  local key = normalize_recipient(body.recipient)
  local raw = pins:get(key)
  local rec = raw and state.json_decode(raw)
  local function fail(msg, tries)
    return json(200, { status = "ERROR", error = msg, triesRemaining = tries or 0 })
  end
  if not rec then
    return fail("No PIN pending for this recipient (never requested or already used)")
  end
  if rec.tries <= 0 then
    return fail("PIN void after too many wrong attempts: request a new one")
  end
  if ngx.now() > rec.expires_at then
    pins:delete(key)
    return fail("PIN expired: request a new one")
  end
  if body.pin == rec.pin then
    pins:delete(key)
    return json(200, { status = "OK" })
  end
  rec.tries = rec.tries - 1
  pins:set(key, state.encode(rec))
  return fail("Wrong PIN", rec.tries)
end

local AUTHENTICATED = {
  ["2fa/request"] = request_pin,
  ["2fa/verify"] = verify_pin,
}

local function dispatch(path, fault)
  if path == "login" or path == "token" then
    return login(path, fault)
  end
  if path == "checksession" then
    return checksession()
  end
  local handler = AUTHENTICATED[path]
  if not handler then
    return json_error(404, "Unknown endpoint")
  end
  if ngx.req.get_method() ~= "POST" then
    return json_error(405, "Method not allowed")
  end
  local uk, status, msg = authenticate(true)
  if not uk then
    return json_error(status, msg)
  end
  return handler()
end

-- Fault modes ---------------------------------------------------------------------

local function raw_send_and_close(data)
  local sock, err = ngx.req.socket(true)
  if not sock then
    state.log(ngx.ERR, "sandbox: raw socket unavailable: " .. tostring(err))
    return ngx.exit(444)
  end
  sock:send(data)
  return ngx.exit(444)
end

local function drip()
  local body = '{"status":"OK","note":"dripping slowly.."}'
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.send_headers()
  ngx.flush(true)
  for i = 1, #body do
    ngx.sleep(0.3)
    local ok = ngx.print(body:sub(i, i))
    if not ok then return ngx.exit(444) end
    ok = ngx.flush(true)
    if not ok then return ngx.exit(444) end
  end
  return ngx.exit(ngx.OK)
end

local BIG_SIZE = 8 * 1024 * 1024
local CHUNK = string.rep("x", 65536)

local function big()
  local prefix, suffix = '{"status":"OK","junk":"', '"}'
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = BIG_SIZE
  ngx.send_headers()
  if not ngx.print(prefix) then return ngx.exit(444) end
  local left = BIG_SIZE - #prefix - #suffix
  while left > 0 do
    local n = left < #CHUNK and left or #CHUNK
    local ok = ngx.print(n == #CHUNK and CHUNK or CHUNK:sub(1, n))
    if ok then ok = ngx.flush(true) end
    if not ok then return ngx.exit(444) end
    left = left - n
  end
  ngx.print(suffix)
  return ngx.exit(ngx.OK)
end

local function redirect()
  local host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port)
  local location = ngx.var.scheme .. "://" .. host .. BASE .. "redirected"
  ngx.header["Location"] = location
  return json(302, { status = "ERROR", error = "redirected to " .. location })
end

local SIMPLE_FAULTS = {
  ratelimit = function()
    return json_error(429, "rate limited")
  end,
  hang = function()
    ngx.sleep(120)
    return ngx.exit(444)
  end,
  drop = function()
    return ngx.exit(444)
  end,
  cut = function()
    return raw_send_and_close("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Content-Length: 100\r\n\r\n" .. '{"status":')
  end,
  badlen = function()
    return raw_send_and_close("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      .. "Content-Length: 50\r\n\r\n" .. '{"status":"OK","x":1')
  end,
  garbage = function()
    return raw_send_and_close("SSH-2.0-garbage\r\n\r\n" .. state.random_bytes(64))
  end,
  drip = drip,
  big = big,
  redirect = redirect,
  notjson = function()
    return send(200, "OK", "text/plain")
  end,
  empty = function()
    return send(200, "", "application/json")
  end,
  badjson = function()
    return send(200, '{"status":"OK"', "application/json")
  end,
}

-- Whether name is a fault mode (for config fault_next, which would otherwise fail later).
function M.is_fault(name)
  if SIMPLE_FAULTS[name] or name == "login-garbage" then return true end
  local code = tonumber(name:match("^status%-(%d%d%d)$"))
  return (code and code >= 200 and code <= 599) or name:match("^retry%-after%-%d+$") ~= nil
    or name:match("^slow%-%d+$") ~= nil
end

local function run_fault(name, path)
  local code = name:match("^status%-(%d%d%d)$")
  if code then
    code = tonumber(code)
    if code >= 200 and code <= 599 then
      return json_error(code, "injected " .. code)
    end
  end
  local secs = name:match("^retry%-after%-(%d+)$")
  if secs then
    ngx.header["Retry-After"] = secs
    return json_error(429, "rate limited, retry after " .. secs .. " s")
  end
  local ms = name:match("^slow%-(%d+)$")
  if ms then
    ngx.sleep(tonumber(ms) / 1000)
    return dispatch(path, name)
  end
  if name == "login-garbage" then
    return dispatch(path, name)
  end
  local f = SIMPLE_FAULTS[name]
  if f then return f() end
  return json_error(400, "Unknown fault mode")
end

-- Entry points (content_by_lua) -------------------------------------------------------

local function guarded(fn, ...)
  local ok, err = xpcall(fn, debug.traceback, ...)
  if not ok then
    state.log(ngx.ERR, "sandbox: internal error: " .. tostring(err))
    if not ngx.headers_sent then
      return json_error(500, "sandbox internal error (see error log)")
    end
    return ngx.exit(444)
  end
end

-- config {"drop_next": true | N}: the next (N) gateway requests are recorded
-- with fault "drop_next" and their connection is closed without an answer.
local function take_drop_next()
  local d = state.dict.config
  local n = d:get("drop_next")
  if not n or n == 0 then return false end
  d:set("drop_next", n - 1)
  return true
end

-- config {"fault_next": "<fault name>"}: the next gateway request on the normal path behaves as
-- /fault/<name>/ would, so a spec can show that the same client works again right after a fault.
local function take_fault_next()
  local d = state.dict.config
  local name = d:get("fault_next")
  if not name or name == "" then return nil end
  d:set("fault_next", "")
  return name
end

function M.handle()
  return guarded(function()
    local path = ngx.var.uri:sub(#BASE + 1)
    local drop = take_drop_next()
    local fault = not drop and take_fault_next() or nil
    record(path, drop and "drop_next" or fault, read_body())
    if drop then return ngx.exit(444) end
    if fault then return run_fault(fault, path) end
    return dispatch(path, nil)
  end)
end

function M.handle_fault()
  return guarded(function()
    local name, path = ngx.var.uri:match("^/fault/([^/]+)/(.*)$")
    if not name then
      return json_error(404, "Use /fault/<name>/<endpoint>")
    end
    local drop = take_drop_next()
    record(path, drop and "drop_next" or name, read_body())
    if drop then return ngx.exit(444) end
    return run_fault(name, path)
  end)
end

return M
