-- wire_spec.lua — the request headers as they arrive, line by line, at a hostile server (which
-- keeps every header line, repeats included): each header the module means to send comes exactly
-- once, nothing else comes, and libcurl adds none of its defaults behind the module's back. The
-- module hands libcurl its headers as one header-list entry of several lines (src/http.c,
-- headers_new): these specs are what says that libcurl still sees the ones it must see.
local cpath = os.getenv("SMSEND_CPATH")
if cpath then package.cpath = cpath .. ";" .. package.cpath end

local smsend = require "smsend"
local hostile = require "spec.support.hostile"

local UK, TOK = "WIRE-UK", "WIRE-TOK"
local RCPT = "+393471234567"

-- name -> how many times it came
local function tally(names)
  local n = {}
  for _, name in ipairs(names) do n[name] = (n[name] or 0) + 1 end
  return n
end

-- The request's header names, each exactly once, are those of `want` (a list), and no others.
local function assert_headers(req, want)
  local got, seen = tally(req.header_names), {}
  for _, name in ipairs(want) do
    assert.equal(1, got[name], ("header %s: %d times in %s"):format(name, got[name] or 0,
      table.concat(req.header_names, ", ")))
    seen[name] = true
  end
  for name in pairs(got) do
    assert.is_true(seen[name] or false, ("unexpected header %s in %s"):format(name, table.concat(req.header_names, ", ")))
  end
end

for _, kind in ipairs({ "http", "https" }) do
  describe("the request on the wire (" .. kind .. ")", function()
    local srv = hostile.fixture{ tls = kind == "https" }

    local function new(extra)
      local o = { base_url = srv.base_url, cainfo = srv.ca_file, timeout = 3 }
      for k, v in pairs(extra) do o[k] = v end
      return assert(smsend.new(o))
    end

    it("request_pin with an access token: host, accept, the credentials, content type and length, user agent; once each", function()
      local c = new{ user_key = UK, access_token = TOK, user_agent = "wire/1" }
      local st = c:request_pin{ recipient = RCPT }
      c:close()
      assert.is_true(st.ok, st.message)
      local req = srv:requests("2fa/request")[1]
      assert_headers(req, { "host", "accept", "user_key", "access_token", "content-type", "content-length", "user-agent" })
      assert.equal(UK, req.headers.user_key)
      assert.equal(TOK, req.headers.access_token)
      assert.equal("application/json", req.headers["content-type"]) -- not libcurl's form default
      assert.equal("*/*", req.headers.accept)
      assert.matches(" wire/1$", req.headers["user-agent"])
      assert.equal(tostring(#req.body), req.headers["content-length"])
    end)

    it("a value with CR or LF never gets into the header entry: refused, nothing sent", function()
      local evil = "app/1\r\nX-Evil: 1"
      local c, err = smsend.new{ user_key = UK, access_token = TOK, base_url = srv.base_url, user_agent = evil }
      assert.is_nil(c)
      assert.matches("user_agent", err)
      local st = smsend.request_pin{ user_key = UK, access_token = "T\r\nX-Evil: 1", base_url = srv.base_url,
                                     cainfo = srv.ca_file, recipient = RCPT }
      assert.equal("invalid_request", st.error)
      assert.equal("access_token", st.field)
      assert.equal(0, #srv:requests())
    end)

    it("verify_pin with a session key from a login: the login has no credentials in headers; then Session_key", function()
      local c = new{ username = "wire-user", password = "wire-pass" }
      local st = c:verify_pin{ recipient = RCPT, pin = "12345" }
      c:close()
      assert.is_not_nil(st.status, st.message)
      local login = srv:requests("login")[1]
      assert.is_not_nil(login, "a login was made")
      assert_headers(login, { "host", "accept", "user-agent" })
      local req = srv:requests("2fa/verify")[1]
      assert_headers(req, { "host", "accept", "user_key", "session_key", "content-type", "content-length", "user-agent" })
      assert.equal("HOSTILE-SK", req.headers.session_key)
    end)
  end)
end
