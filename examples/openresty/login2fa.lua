-- login2fa.lua — the handler of examples/openresty/nginx.conf: a password login whose second factor
-- is a PIN sent by SMS through require("smsend.resty"), then a session.
--
--   POST /login         username, password  → 200 {"login_id", "expires_in"} and an SMS to the user
--   POST /login/verify  login_id, pin         → 200 {"user", "session"} (+ cookie), or 401 with tries_remaining

local cjson = require "cjson"
local resty = require "smsend.resty"

local M = {}

-- Your user store goes here; checking the password is the application's business, not smsend's.
M.USERS = {
  alice = { password = "wonderland", phone = "+393471234567" },
}

local PIN_MINUTES = 5

-- The options of every gateway call. No credentials here: the module then reads SMSEND_USER_KEY +
-- SMSEND_ACCESS_TOKEN (or SMSEND_USERNAME + SMSEND_PASSWORD) and SMSEND_BASE_URL from the
-- environment that nginx.conf passes on with `env`. Keep these the same for every call: each
-- worker-thread VM keeps one client, with its kept-alive gateway connection, per distinct set.
M.GATEWAY = {
  -- Seconds per HTTP exchange with the gateway: the longest a worker thread (and the user) waits
  -- for one; up to three exchanges when the module logs in with username/password. Keep it below
  -- the patience of the browser and of any proxy in front of nginx.
  timeout = 8,
  connect_timeout = 3,
  -- TLS trust. libcurl always verifies the gateway's certificate, by default against its
  -- compiled-in bundle (Debian: this file, from the ca-certificates package). Name a bundle when
  -- that default is wrong for the host: a container without ca-certificates, or an outgoing
  -- TLS-inspecting proxy with its own CA. The worker threads open it, as nginx's `user` (not as
  -- root), for each new connection. nginx's lua_ssl_trusted_certificate does not apply here: that
  -- one is for cosockets, and this is libcurl.
  cainfo = "/etc/ssl/certs/ca-certificates.crt",
}

local function with_gateway(fields)
  local t = {}
  for k, v in pairs(M.GATEWAY) do t[k] = v end
  for k, v in pairs(fields) do t[k] = v end
  return t
end

local function reply(status, body, headers)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.header.cache_control = "no-store"
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.say(cjson.encode(body))
  return ngx.exit(status)
end

-- 128 random bits as hex. Opened per call on purpose: a handle opened in the master would share
-- its read buffer with every forked worker, and they would hand out the same ids.
local function random_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(16)
  f:close()
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function form()
  ngx.req.read_body()
  local args = ngx.req.get_post_args(10) or {}
  local function one(name)
    local v = args[name]
    return type(v) == "string" and v or nil
  end
  return one
end

-- A failed gateway call: the details go to the error log, the user gets a short answer.
local function gateway_failed(op, st)
  ngx.log(ngx.ERR, "smsend ", op, " failed: ", st.error, ": ", st.message)
  if st.error == "rate_limited" or st.error == "cooldown" then
    return reply(429, { error = "too_many_requests" },
      { ["Retry-After"] = tostring(math.ceil(st.retry_after or 30)) })
  end
  if st.retryable then
    -- the SMS certainly did not go out: the user may simply try again
    return reply(503, { error = "sms_unavailable", retry = true }, { ["Retry-After"] = "2" })
  end
  return reply(502, { error = "sms_failed" })
end

function M.start()
  local arg = form()
  local name, password = arg("username"), arg("password")
  if not name or not password then
    return reply(400, { error = "username and password are required" })
  end
  local user = M.USERS[name]
  if not user or user.password ~= password then
    return reply(401, { error = "wrong username or password" })
  end
  -- Runs in the `smsend` thread pool; this request waits, the rest of the worker goes on.
  local st = resty.request_pin(with_gateway{
    recipient = user.phone,
    senderName = "MyApp",
    expiry = PIN_MINUTES,
    messageBody = "Your MyApp login code is %PIN%",
  })
  if not st.ok then
    return gateway_failed("request_pin", st)
  end
  local id = random_id()
  ngx.shared.login2fa:set("login:" .. id, name, PIN_MINUTES * 60)
  return reply(200, { login_id = id, expires_in = PIN_MINUTES * 60 })
end

function M.verify()
  local arg = form()
  local id, pin = arg("login_id"), arg("pin")
  if not id or not pin then
    return reply(400, { error = "login_id and pin are required" })
  end
  local logins = ngx.shared.login2fa
  local name = logins:get("login:" .. id)
  local user = name and M.USERS[name]
  if not user then
    return reply(401, { error = "unknown or expired login: start again" })
  end
  local st = resty.verify_pin(with_gateway{ recipient = user.phone, pin = pin })
  if st.ok then
    logins:delete("login:" .. id)
    local session = random_id()
    logins:set("session:" .. session, name, 3600)
    return reply(200, { user = name, session = session },
      { ["Set-Cookie"] = "session=" .. session .. "; Path=/; HttpOnly; Secure; SameSite=Strict" })
  end
  if st.error == "wrong_pin" then
    if st.tries_remaining == 0 then logins:delete("login:" .. id) end
    return reply(401, { error = "wrong_pin", tries_remaining = st.tries_remaining })
  end
  if st.error == "invalid_request" and st.field == "pin" then
    return reply(400, { error = "that is not a PIN" })
  end
  return gateway_failed("verify_pin", st)
end

return M
