-- secrets_spec.lua — secret hygiene with sentinel credentials: a sandbox whose only user has
-- sentinel user_key, access_token, username and password; every kind of call (request, verify,
-- login, check_session, session renewal, module-level), the failures (wrong password, wrong
-- token, faults, timeouts, TLS refusals, invalid input, bad configurations), and then a scan of
-- everything a secret could leak into: every status table (keys and values, recursively), every
-- message, tostring of clients, raised errors, the stdout+stderr of a child interpreter doing the
-- same (including its dying on an uncaught error and on SIGABRT), and the sandbox's logs (error
-- log, access log, SMS console). None may hold a sentinel, the session keys the sandbox issued,
-- or their URL-encoded forms. (The sandbox's /_sandbox/requests recording holds headers on
-- purpose: it is test plumbing, not a log, and is not scanned.)
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local helpers = require "spec.support.helpers"
local util = require "spec.support.util"

local UK = "SENTINEL-UK-7d41c0a9"
local TOK = "SENTINEL-TOK-93be5a17"
local USER = "sentinel-user-2f8c61"
local PASS = "SENTINEL-PW-5e0a/ü?&= %x" -- characters that get percent-encoded in the login URL
local RCPT = "+393471234567"

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- What must never show: the secrets, their distinctive tails (a cut-off secret still leaks), and
-- their URL-encoded forms (a quoted login URL).
local function needles(extra)
  local list = { "SENTINEL", "sentinel", "7d41c0a9", "93be5a17", "2f8c61", "5e0a" }
  for _, s in ipairs{ UK, TOK, USER, PASS } do
    list[#list + 1] = s
    list[#list + 1] = urlencode(s)
  end
  for _, s in ipairs(extra or {}) do
    list[#list + 1] = s
    list[#list + 1] = urlencode(s)
  end
  return list
end

-- Everything a value holds, as text: tables recursively (keys and values, metatables skipped
-- since status tables have none), other values through tostring.
local function flatten(v, out, seen)
  out = out or {}
  seen = seen or {}
  if type(v) == "table" then
    if seen[v] then return out end
    seen[v] = true
    for k, x in pairs(v) do
      flatten(k, out, seen)
      flatten(x, out, seen)
    end
  else
    out[#out + 1] = tostring(v)
  end
  return out
end

local function find_leak(text, extra)
  for _, n in ipairs(needles(extra)) do
    local at = text:find(n, 1, true)
    if at then
      return ("%q found: ...%s..."):format(n, text:sub(math.max(1, at - 60), at + #n + 60))
    end
  end
  return nil
end

local function read(path)
  return helpers.read_file(path) or ""
end

describe("secret hygiene with sentinel credentials", function()
  local sb
  local captured -- every text the module produced in this process
  local session_keys -- issued by the sandbox during the run (learnt from its recording)

  setup(function()
    sb = helpers.start_sandbox{ users = { { username = USER, password = PASS, user_key = UK, access_token = TOK } } }
    captured = {}
    session_keys = {}
  end)

  teardown(function()
    if sb then sb:stop() end
  end)

  -- keep the session keys the sandbox issued, then clear its recording
  local function harvest()
    for _, r in ipairs(sb:requests()) do
      local k = r.headers and (r.headers["session_key"] or r.headers["Session_key"])
      if type(k) == "string" and #k >= 8 then session_keys[k] = true end
    end
    sb:reset()
  end

  local function keys_list()
    local out = {}
    for k in pairs(session_keys) do out[#out + 1] = k end
    return out
  end

  local function keep(...)
    local n = select("#", ...)
    for i = 1, n do flatten((select(i, ...)), captured) end
    return ...
  end

  -- pcall that keeps the error message too
  local function try(f, ...)
    return keep(pcall(f, ...))
  end

  local function token_client(extra)
    local o = { user_key = UK, access_token = TOK, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c, err = smsend.new(o)
    keep(err, c and tostring(c))
    return assert(c, err)
  end

  local function login_client(extra)
    local o = { username = USER, password = PASS, base_url = sb.base_url, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c, err = smsend.new(o)
    keep(err, c and tostring(c))
    return assert(c, err)
  end

  local function all_calls(c, what)
    keep(c:request_pin{ recipient = RCPT, senderName = "MyApp", messageBody = "Your code is %PIN%" })
    local pin = sb:last_pin(RCPT)
    keep(c:verify_pin{ recipient = RCPT, pin = "000000" == pin and "111111" or "000000" })
    if pin then keep(c:verify_pin{ recipient = RCPT, pin = pin }) end
    keep(c:check_session())
    keep(c:login())
    keep(c:request_pin{ recipient = "bad" }, c:verify_pin{ recipient = RCPT, pin = "" })
    keep(tostring(c), what)
  end

  it("holds no secret in anything the module returns, in the happy paths", function()
    local c = token_client()
    all_calls(c, "token")
    local s = login_client()
    all_calls(s, "session login")
    sb:expire_sessions() -- the next call gets a 401, logs in again and repeats
    keep(s:request_pin{ recipient = RCPT })
    keep(s:check_session())
    local t = login_client{ auth = "token" }
    all_calls(t, "token login")
    for _, o in ipairs{
      { user_key = UK, access_token = TOK },
      { username = USER, password = PASS },
      { username = USER, password = PASS, auth = "token" },
    } do
      o.base_url = sb.base_url
      o.recipient = RCPT
      keep(smsend.request_pin(o))
      o.recipient, o.pin = RCPT, "000000"
      keep(smsend.verify_pin(o))
    end
    -- the session variant with the key the sandbox hands out
    local key, secret = helpers.login(sb.base_url, USER, PASS)
    assert.equal(UK, key)
    session_keys[secret] = true
    local ks = assert(smsend.new{ user_key = UK, session_key = secret, base_url = sb.base_url })
    keep(tostring(ks))
    all_calls(ks, "session key")
    -- control: the scan does find the secrets where they belong (the gateway saw them in headers
    -- and in the login query), so a clean result below means something
    local wire = table.concat(flatten(sb:requests()), "\n")
    for _, s in ipairs{ UK, TOK, urlencode(PASS), urlencode(USER), secret } do
      assert.is_truthy(wire:find(s, 1, true), "not on the wire: " .. s)
    end
    assert.is_not_nil(find_leak(wire))
    harvest()
    assert.is_true(next(session_keys) ~= nil, "no session key was issued")
    local leak = find_leak(table.concat(captured, "\n"), keys_list())
    assert.is_nil(leak, leak)
  end)

  it("holds no secret in anything the module returns, in failures", function()
    -- wrong password / token / user_key: the gateway refuses
    keep(login_client{ password = PASS .. "x" }:request_pin{ recipient = RCPT })
    keep(login_client{ password = "x" .. PASS }:login())
    keep(login_client{ username = USER .. "x" }:login())
    keep(token_client{ access_token = TOK .. "x" }:request_pin{ recipient = RCPT })
    keep(token_client{ user_key = UK .. "x" }:verify_pin{ recipient = RCPT, pin = "123456" })
    keep(token_client{ access_token = TOK .. "x" }:check_session())
    -- every fault, through a token client and a login client
    for _, fault in ipairs{ "status-400", "status-401", "status-404", "status-500", "retry-after-3", "ratelimit",
                            "redirect", "garbage", "drop", "cut", "badlen", "big", "notjson", "empty", "badjson",
                            "login-garbage", "hang", "drip" } do
      local url = sb.url_for(fault)
      local tc = token_client{ base_url = url, timeout = 0.4 }
      keep(tc:request_pin{ recipient = RCPT }, tc:verify_pin{ recipient = RCPT, pin = "123456" }, tc:check_session())
      keep(tostring(tc))
      local lc = login_client{ base_url = url, timeout = 0.4 }
      keep(lc:login(), lc:request_pin{ recipient = RCPT }, lc:check_session())
      keep(tostring(lc))
    end
    -- transport failures: refused, unresolvable, TLS refusals (the login URL carries the password)
    local closed = "http://127.0.0.1:" .. util.closed_port() .. "/API/v1.0/REST/"
    for _, url in ipairs{ closed, "https://" .. ("a"):rep(64) .. ".invalid/API/v1.0/REST/", sb.tls_urls.untrusted,
                          sb.tls_urls.wrong_host, sb.tls_urls.expired, sb.tls_urls.tls,
                          "https://127.0.0.1:" .. sb.port .. "/API/v1.0/REST/" } do
      local lc = login_client{ base_url = url, cainfo = sb.ca_file }
      keep(lc:login(), lc:request_pin{ recipient = RCPT })
      local tc = token_client{ base_url = url, cainfo = sb.ca_file }
      keep(tc:request_pin{ recipient = RCPT }, tc:check_session())
    end
    -- the proxy option with credentials in it is a secret too
    keep(token_client{ base_url = sb.tls_urls.tls, cainfo = sb.ca_file,
                       proxy = "http://proxyuser:SENTINEL-PXY-0b7e@127.0.0.1:" .. util.closed_port() }
      :request_pin{ recipient = RCPT })
    -- and so it is in the refusal of a proxy with an http:// base_url
    keep(select(2, smsend.new{ user_key = UK, access_token = TOK, base_url = sb.base_url,
                               proxy = "http://proxyuser:SENTINEL-PXY-0b7e@127.0.0.1:1" }))
    -- bad configurations: the messages name the option, never its value
    for _, o in ipairs{
      { user_key = UK .. "\n", access_token = TOK },
      { user_key = UK, access_token = TOK .. "\0" },
      { user_key = " " .. UK, access_token = TOK },
      { user_key = UK, access_token = TOK, session_key = TOK },
      { user_key = UK, access_token = TOK, base_url = "http://example.com/" .. UK },
      { user_key = UK, access_token = TOK, base_url = "https://" .. USER .. ":" .. PASS .. "@example.com/" },
      { user_key = UK, access_token = TOK, timeout = -1 },
      { user_key = UK, access_token = TOK, recipient = TOK },
      { username = USER },
      { password = PASS },
      { username = USER .. "\r\n", password = PASS },
      { username = USER, password = PASS .. "\0" },
      { user_key = UK, access_token = TOK:rep(40) },
      { user_key = UK, access_token = TOK, proxy = "http://u:" .. PASS .. "\n@127.0.0.1:1" },
      { user_key = UK, access_token = TOK, user_agent = TOK .. "\n" },
    } do
      keep(smsend.new(o))
      o.base_url = o.base_url or sb.base_url
      o.recipient = RCPT
      keep(smsend.request_pin(o))
    end
    -- invalid input holding a secret-looking value in the wrong place
    local c = token_client()
    keep(c:request_pin{ recipient = RCPT, user_key = UK })
    keep(c:request_pin{ recipient = RCPT, password = PASS })
    keep(c:verify_pin{ recipient = RCPT, pin = "123456", access_token = TOK })
    -- misuse: raised errors
    c:close()
    try(c.request_pin, c, { recipient = RCPT })
    try(c.login, c)
    keep(tostring(c))
    try(smsend.new, UK)
    harvest()
    local leak = find_leak(table.concat(captured, "\n"), keys_list())
    assert.is_nil(leak, leak)
    assert.is_true(#captured > 300, "too little was captured: " .. #captured)
  end)

  -- Regression: libcurl quotes a malformed proxy URL in its error text, so smsend.new checks the
  -- proxy's syntax itself, and the proxy URL is among the texts kept out of messages.
  it("keeps a proxy password out of messages even when the proxy URL is malformed", function()
    local function check()
      local texts = {}
      for _, proxy in ipairs{ "http://u:SENTINEL-PXY-0b7e@127.0.0.1:99999", "http://u:SENTINEL-PXY-0b7e@[::1",
                              "socks9://u:SENTINEL-PXY-0b7e@127.0.0.1:1", "http://u:SENTINEL-PXY-0b7e@bad host:1" } do
        local c, err = smsend.new{ user_key = UK, access_token = TOK, base_url = sb.tls_urls.tls, proxy = proxy }
        flatten({ err, c and tostring(c), c and c:request_pin{ recipient = RCPT } }, texts)
        flatten(smsend.request_pin{ user_key = UK, access_token = TOK, base_url = sb.tls_urls.tls, proxy = proxy,
                                    recipient = RCPT }, texts)
      end
      local leak = find_leak(table.concat(texts, "\n"))
      assert.is_nil(leak, leak)
    end
    check()
  end)

  it("leaves none in a child interpreter's stdout and stderr, even when it dies", function()
    local code = [[
      local smsend = require "smsend"
      local env = os.getenv
      local url, uk, tok, user, pass = env("URL"), env("S_UK"), env("S_TOK"), env("S_USER"), env("S_PASS")
      local function show(st)
        local keys = {}
        for k, v in pairs(st) do keys[#keys + 1] = k .. "=" .. tostring(v) end
        table.sort(keys)
        io.stdout:write(table.concat(keys, " "), "\n")
        io.stderr:write(tostring(st.message), "\n")
      end
      local c = assert(smsend.new{ user_key = uk, access_token = tok, base_url = url })
      local l = assert(smsend.new{ username = user, password = pass, base_url = url })
      local w = assert(smsend.new{ username = user, password = pass .. "x", base_url = url })
      show(c:request_pin{ recipient = "+393471234567" })
      show(c:verify_pin{ recipient = "+393471234567", pin = "000000" })
      show(l:request_pin{ recipient = "+393471234567" })
      show(l:check_session())
      show(w:login())
      show(w:request_pin{ recipient = "+393471234567" })
      show(smsend.request_pin{ username = user, password = pass, base_url = url, recipient = "bad" })
      show(smsend.request_pin{ username = user, password = pass, base_url = env("FAULT"), recipient = "+393471234567" })
      print(select(2, smsend.new{ user_key = uk .. "\n", access_token = tok }))
      print(c, l, w)
      io.stderr:write(tostring(l), "\n")
      io.stdout:flush()
      if env("DIE") == "error" then error(l) end          -- uncaught: the interpreter prints it
      if env("DIE") == "abort" then os.execute("kill -ABRT " .. io.open("/proc/self/stat"):read("*l"):match("^(%d+)")) end
      if env("DIE") == "error-string" then error("failed with " .. tostring(c)) end
      print("end")
    ]]
    local env = { URL = sb.base_url, FAULT = sb.url_for("login-garbage"), S_UK = UK, S_TOK = TOK, S_USER = USER,
                  S_PASS = PASS }
    local outputs = {}
    for _, die in ipairs{ "no", "error", "error-string", "abort" } do
      env.DIE = die
      local out, ok = util.run_lua(code, env)
      outputs[#outputs + 1] = out
      if die == "no" then
        assert.is_true(ok, out)
        assert.matches("end", out)
        assert.matches("ok=true", out)
        assert.matches("login_failed", out)
      elseif not rawget(_G, "jit") then
        -- (LuaJIT's popen close reports no exit status)
        assert.is_falsy(ok, die .. ": " .. out)
      end
    end
    harvest()
    local all = table.concat(outputs, "\n")
    assert.is_true(#all > 500, all)
    local leak = find_leak(all, keys_list())
    assert.is_nil(leak, leak)
  end)

  it("leaves none in the sandbox's logs", function()
    -- a few more calls so that every log has lines from this user
    local l = login_client()
    keep(l:request_pin{ recipient = RCPT }, l:login(), l:check_session())
    keep(login_client{ password = "wrong" }:login())
    harvest()
    local files = {}
    local p = io.popen("find " .. helpers.shell_quote(sb.dir .. "/logs") .. " -type f 2>/dev/null")
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    if sb.console_file then files[#files + 1] = sb.console_file end
    local names, total = {}, 0
    for _, f in ipairs(files) do
      local text = read(f)
      total = total + #text
      names[#names + 1] = f:match("[^/]+$") .. "=" .. #text
      local leak = find_leak(text, keys_list())
      assert.is_nil(leak, f .. ": " .. tostring(leak))
    end
    -- the scan looked at real logs: the access log saw the logins, the console the SMS
    local access = read(sb.dir .. "/logs/access.log")
    assert.matches("GET /API/v1.0/REST/login", access)
    assert.matches("POST /API/v1.0/REST/2fa/request", access)
    assert.matches("SMS to", read(sb.console_file))
    assert.is_true(total > 1000, table.concat(names, " "))
  end)
end)
