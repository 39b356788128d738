-- smsend.sandbox — a local imitation of the smsend REST gateway (nginx + its Lua module) for
-- tests: start one on free loopback ports, read the PINs it "sent", make requests misbehave.
--
--   local sandbox = require "smsend.sandbox"
--   local sb = sandbox.start{ tls = true }        -- stopped by sb:stop(), __close, __gc or at exit
--   local client = smsend.new(sb:options())
--   ... sb:last_pin("+39 347 123 4567"), sb:fault_next("drop"), sb:expire_sessions() ...
--
-- sandbox.launch{...} is the full-control start the project's own specs and tools use (through
-- sandbox/launch.lua); see sandbox/README.md. Plain Lua (5.1/LuaJIT .. 5.4) with luasocket and
-- lua-cjson. The nginx side lives next to this file, in smsend/sandbox/*.lua.

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

M.DEFAULT_USERS = {
  { username = "sandbox", password = "sandbox-pass",
    user_key = "SBXUSER", access_token = "SBXTOKEN" },
}
M.BASE_PATH = "/API/v1.0/REST/"
M.TLS_KINDS = { "tls", "wrong_host", "expired", "untrusted" }

-- Shell and file helpers --------------------------------------------------------

local function shq(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.shell_quote = shq

-- os.execute → ok, exit code (LuaJIT returns a raw wait status, 5.2+ a triple).
local function run(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then
    if a >= 256 then a = math.floor(a / 256) end
    return a == 0, a
  end
  return a == true, c
end

M.run = run

local function capture(cmd)
  local f = assert(io.popen(cmd, "r"))
  local out = f:read("*a")
  f:close()
  return out
end
M.capture = capture

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end
M.exists = exists

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  assert(f:close())
end
M.write_file = write_file

-- A fresh directory $TMPDIR/prefix.XXXXXX ($TMPDIR defaults to /tmp), or nil when mktemp fails.
local function tmpdir(prefix)
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  local d = capture("mktemp -d " .. shq(base .. "/" .. prefix .. ".XXXXXX")):gsub("%s+$", "")
  if d == "" then return nil end
  return d
end
M.tmpdir = tmpdir

local function tail(path, n)
  local s = read_file(path)
  if not s or s == "" then return "(empty)" end
  local lines = {}
  for line in s:gmatch("[^\n]+") do lines[#lines + 1] = line end
  local from = math.max(1, #lines - (n or 20) + 1)
  return table.concat(lines, "\n", from)
end

local function abspath(p)
  local out = capture("cd " .. shq(p) .. " 2>/dev/null && pwd -P")
  out = out:gsub("%s+$", "")
  assert(out ~= "", "no such directory: " .. p)
  return out
end

-- Paths go into nginx.conf and openssl.cnf verbatim (quoted): refuse the few
-- characters that would need escaping there.
local function check_path(p, what)
  if p:find('[%c"\\$;{}]') then
    error(("smsend sandbox: unsupported character in %s path %q"):format(what, p), 3)
  end
  return p
end

-- Where this file lives: ROOT/smsend/sandbox.lua, with the nginx side in ROOT/smsend/sandbox/.
-- ROOT is lua/ in the source tree and share/lua/5.x/ (or a rock tree) once installed, so nginx
-- finds the same files through lua_package_path "ROOT/?.lua" wherever they are.
local function here()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or "lua/smsend/sandbox.lua"
  local dir = file:match("^(.*)/[^/]*$") or "."
  return abspath(dir)
end

M.lib_dir = here():match("^(.*)/[^/]*$")

-- Process helpers ---------------------------------------------------------------

local function pid_alive(pid)
  pid = tonumber(pid)
  if not pid then return false end
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then
    return stat:match("^%d+ %b() (%a)") ~= "Z"
  end
  return (run("kill -0 " .. pid .. " 2>/dev/null"))
end
M.pid_alive = pid_alive

local function my_pid()
  -- the shell started by popen is our child: its $PPID is this process
  return tonumber((capture("echo $PPID"):match("%d+")))
end
M.my_pid = my_pid

local function sleep(s) socket.sleep(s) end

-- Tools ---------------------------------------------------------------------------

function M.find_nginx(opt)
  local candidates = { opt, os.getenv("SMSEND_SANDBOX_NGINX"), "/usr/sbin/nginx",
    "/usr/local/openresty/nginx/sbin/nginx", "/usr/local/sbin/nginx" }
  for i = 1, 5 do
    local c = candidates[i]
    if c and c ~= "" and run("test -x " .. shq(c)) then return c end
  end
  local p = capture("command -v nginx 2>/dev/null"):gsub("%s+$", "")
  if p ~= "" then return p end
  error("smsend sandbox: nginx not found (apt-get install nginx libnginx-mod-http-lua)", 2)
end

-- load_module lines for the lua module (none when it is built in, as in OpenResty).
function M.module_directives(nginx, modules_dir)
  local v = capture(shq(nginx) .. " -V 2>&1")
  if v:find("lua%-nginx%-module") then return "" end
  local dirs = { modules_dir, os.getenv("SMSEND_SANDBOX_NGINX_MODULES"),
    "/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules" }
  for i = 1, 5 do
    local d = dirs[i]
    if d and d ~= "" and exists(d .. "/ngx_http_lua_module.so") then
      local out = {}
      if exists(d .. "/ndk_http_module.so") then
        out[#out + 1] = ('load_module "%s/ndk_http_module.so";'):format(check_path(d, "module"))
      end
      out[#out + 1] = ('load_module "%s/ngx_http_lua_module.so";'):format(check_path(d, "module"))
      return table.concat(out, "\n")
    end
  end
  error("smsend sandbox: ngx_http_lua_module.so not found "
    .. "(apt-get install libnginx-mod-http-lua, or set SMSEND_SANDBOX_NGINX_MODULES)", 2)
end

-- Ports ------------------------------------------------------------------------------

local function ipv6_available()
  if not socket.tcp6 then return false end
  local s = socket.tcp6()
  if not s then return false end
  local ok = s:bind("::1", 0)
  s:close()
  return ok and true or false
end
M.ipv6_available = ipv6_available

-- Pick `count` distinct free loopback ports (also free on ::1 when ipv6),
-- keeping them bound until all are chosen so they differ from each other.
local function free_ports(count, ipv6)
  local held, ports = {}, {}
  local attempts = 0
  while #ports < count do
    attempts = attempts + 1
    assert(attempts < 200, "smsend sandbox: cannot find free loopback ports")
    local s = assert(socket.tcp())
    assert(s:bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    held[#held + 1] = s
    port = tonumber(port)
    local ok = true
    if ipv6 then
      local s6 = socket.tcp6()
      ok = s6 and s6:bind("::1", port)
      if s6 then held[#held + 1] = s6 end
    end
    if ok then ports[#ports + 1] = port end
  end
  for _, s in ipairs(held) do s:close() end
  return ports
end

-- One free loopback port: bound (and listening) once, then released, so nothing listens on it.
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end
M.free_port = free_port

-- Like nginx, with SO_REUSEADDR: only a listener makes the port busy, not
-- connections in TIME_WAIT.
local function port_free(port, ipv6)
  local s = assert((socket.tcp4 or socket.tcp)())
  s:setoption("reuseaddr", true)
  local ok = s:bind("127.0.0.1", port)
  s:close()
  if ok and ipv6 then
    s = socket.tcp6()
    s:setoption("reuseaddr", true)
    ok = s:bind("::1", port)
    s:close()
  end
  return ok and true or false
end

local function port_open(port, host)
  local s = socket.tcp()
  if host and host:find(":") then s = socket.tcp6() end
  s:settimeout(0.5)
  local ok = s:connect(host or "127.0.0.1", port)
  s:close()
  return ok and true or false
end
M.port_open = port_open

-- Certificates --------------------------------------------------------------------

local OPENSSL_CNF = [[
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = smsend sandbox
[ ca ]
default_ca = sandbox_ca
[ sandbox_ca ]
database = @DIR@/index.txt
new_certs_dir = @DIR@/newcerts
certificate = @DIR@/ca.crt
private_key = @DIR@/ca.key
rand_serial = yes
default_md = sha256
default_days = 825
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied
[ ext_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ext_localhost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ext_wrong_host ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ext_self ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
]]

local CERT_FILES = { "ca.crt", "tls.crt", "tls.key", "wrong_host.crt", "wrong_host.key",
  "expired.crt", "expired.key", "untrusted.crt", "untrusted.key" }

local function certs_usable(dir)
  for _, f in ipairs(CERT_FILES) do
    if not exists(dir .. "/" .. f) then return false end
  end
  -- still valid for a day (the "expired" one is expired on purpose)
  for _, f in ipairs({ "ca.crt", "tls.crt", "wrong_host.crt", "untrusted.crt" }) do
    if not run("openssl x509 -noout -checkend 86400 -in " .. shq(dir .. "/" .. f)
      .. " >/dev/null 2>&1") then
      return false
    end
  end
  return true
end

local function generate_certs(tmp)
  check_path(tmp, "certificate")
  assert(run("mkdir -p " .. shq(tmp .. "/newcerts")))
  write_file(tmp .. "/index.txt", "")
  local cnf = tmp .. "/openssl.cnf"
  write_file(cnf, (OPENSSL_CNF:gsub("@DIR@", tmp)))
  local log = tmp .. "/openssl.log"
  local function ossl(args)
    local cmd = "cd " .. shq(tmp) .. " && openssl " .. args .. " >>" .. shq(log) .. " 2>&1"
    if not run(cmd) then
      error("smsend sandbox: openssl failed: openssl " .. args .. "\n" .. tail(log, 15), 0)
    end
  end
  local newkey = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  local c = " -config openssl.cnf"
  -- test CA, valid 2019..2045 (so the 2020 "expired" leaf lies inside it)
  ossl("req -new " .. newkey .. " -keyout ca.key -out ca.csr -subj '/CN=smsend sandbox test CA'" .. c)
  ossl("ca -batch -selfsign -notext -keyfile ca.key -in ca.csr -out ca.crt -extensions ext_ca"
    .. " -startdate 20190101000000Z -enddate 20450101000000Z" .. c)
  local leaves = {
    { "tls", "/CN=localhost", "ext_localhost", "-days 825" },
    { "wrong_host", "/CN=wrong.example", "ext_wrong_host", "-days 825" },
    { "expired", "/CN=localhost", "ext_localhost",
      "-startdate 20200101000000Z -enddate 20210101000000Z" },
  }
  for _, l in ipairs(leaves) do
    local name, subj, ext, dates = l[1], l[2], l[3], l[4]
    ossl("req -new " .. newkey .. " -keyout " .. name .. ".key -out " .. name .. ".csr -subj "
      .. subj .. c)
    ossl("ca -batch -notext -in " .. name .. ".csr -out " .. name .. ".crt -extensions " .. ext
      .. " " .. dates .. c)
  end
  ossl("req -x509 -new " .. newkey .. " -keyout untrusted.key -out untrusted.crt -days 825"
    .. " -subj /CN=localhost -extensions ext_self" .. c)
end

-- Create the test CA and server certificates in cert_dir, or reuse them.
function M.ensure_certs(cert_dir)
  if certs_usable(cert_dir) then return cert_dir end
  local parent = cert_dir:match("^(.*)/[^/]*$") or "."
  assert(run("mkdir -p " .. shq(parent)))
  local tmp = cert_dir .. ".tmp." .. tostring(my_pid()) .. "." .. tostring(math.random(1e9))
  local ok, err = pcall(generate_certs, tmp)
  if not ok then
    run("rm -rf " .. shq(tmp))
    error(err, 0)
  end
  -- atomic publish; a concurrent launcher may have won the race
  if exists(cert_dir) or read_file(cert_dir .. "/ca.crt") then
    if certs_usable(cert_dir) then
      run("rm -rf " .. shq(tmp))
      return cert_dir
    end
    run("rm -rf " .. shq(cert_dir))
  end
  if not os.rename(tmp, cert_dir) then
    run("rm -rf " .. shq(tmp))
    assert(certs_usable(cert_dir), "smsend sandbox: cannot publish certificates in " .. cert_dir)
  end
  return cert_dir
end

-- nginx configuration ----------------------------------------------------------------

local ROUTES = [[
    location ^~ /API/v1.0/REST/ {
      content_by_lua_block { require("smsend.sandbox.gateway").handle() }
    }
    location ^~ /fault/ {
      content_by_lua_block { require("smsend.sandbox.gateway").handle_fault() }
    }
    location ^~ /_sandbox/ {
      content_by_lua_block { require("smsend.sandbox.control").handle() }
    }
    location / {
      return 404;
    }
]]

local function listen_lines(port, ipv6, extra)
  local s = ("    listen 127.0.0.1:%d%s;\n"):format(port, extra)
  if ipv6 then s = s .. ("    listen [::1]:%d%s;\n"):format(port, extra) end
  return s
end

local function nginx_conf(sb, modules, opts)
  local d = sb.dir
  local out = {
    "# generated by smsend.sandbox (lua/smsend/sandbox.lua) -- do not edit",
    modules,
    "daemon on;",
    "master_process off;",
    "worker_processes 1;",
    ('pid "%s/nginx.pid";'):format(d),
    ('error_log "%s" notice;'):format(sb.error_log),
    "events { worker_connections 1024; }",
    "http {",
    -- $uri only: never the query string (login/token carry the password)
    [[  log_format sandbox '$remote_addr:$remote_port [$time_local] "$request_method $uri" $status $bytes_sent conn=$connection/$connection_requests';]],
    ('  access_log "%s/logs/access.log" sandbox;'):format(d),
    ('  client_body_temp_path "%s/tmp/body";'):format(d),
    ('  proxy_temp_path "%s/tmp/proxy";'):format(d),
    ('  fastcgi_temp_path "%s/tmp/fastcgi";'):format(d),
    ('  uwsgi_temp_path "%s/tmp/uwsgi";'):format(d),
    ('  scgi_temp_path "%s/tmp/scgi";'):format(d),
    "  underscores_in_headers on;",
    "  keepalive_timeout 60s;",
    "  keepalive_requests 100000;",
    "  client_max_body_size 1m;",
    "  client_body_buffer_size 1m;",
    "  server_tokens off;",
    "  default_type application/octet-stream;",
    "  lua_check_client_abort on;",
    "  lua_socket_log_errors off;",
    ('  lua_package_path "%s/?.lua;;";'):format(M.lib_dir),
    "  lua_shared_dict sbx_config 1m;",
    "  lua_shared_dict sbx_users 1m;",
    "  lua_shared_dict sbx_tokens 4m;",
    "  lua_shared_dict sbx_sessions 4m;",
    "  lua_shared_dict sbx_pins 4m;",
    "  lua_shared_dict sbx_sms 8m;",
    "  lua_shared_dict sbx_requests 64m;",
    ("  init_by_lua_block { require(\"smsend.sandbox.state\").init(%q) }"):format(sb.config_file),
    "  init_worker_by_lua_block { require(\"smsend.sandbox.state\").init_worker() }",
    opts.extra_http_conf or "",
    "  server {",
    listen_lines(sb.port, sb.ipv6, "") .. "    server_name localhost;",
    ROUTES,
    "  }",
  }
  if sb.tls_ports then
    for _, kind in ipairs(M.TLS_KINDS) do
      out[#out + 1] = "  server {"
      out[#out + 1] = listen_lines(sb.tls_ports[kind], sb.ipv6, " ssl")
        .. "    server_name localhost;"
      out[#out + 1] = ('    ssl_certificate "%s/%s.crt";'):format(sb.cert_dir, kind)
      out[#out + 1] = ('    ssl_certificate_key "%s/%s.key";'):format(sb.cert_dir, kind)
      out[#out + 1] = "    ssl_protocols TLSv1.2 TLSv1.3;"
      out[#out + 1] = ROUTES
      out[#out + 1] = "  }"
    end
  end
  out[#out + 1] = "}"
  return table.concat(out, "\n") .. "\n"
end

-- HTTP client (luasocket) ---------------------------------------------------------------

-- Deep copy replacing cjson.null by nil (handy in Lua; `fault` of a normal
-- request becomes nil).
local function denull(v)
  if v == cjson.null then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = denull(x) end
  return out
end
M.denull = denull

-- request{method=, url=, headers=, body=, redirect=false, timeout=} →
-- status (number) or nil, body, headers, status line / error
function M.http_request(req)
  local chunks = {}
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k] = v end
  local body = req.body
  if body then headers["content-length"] = tostring(#body) end
  local old = http.TIMEOUT
  http.TIMEOUT = req.timeout or 10
  local ok, one, status, resp_headers, status_line = pcall(http.request, {
    url = req.url,
    method = req.method or "GET",
    headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    redirect = req.redirect or false,
  })
  http.TIMEOUT = old
  if not ok then return nil, nil, nil, one end
  if not one then
    return nil, table.concat(chunks), nil, status   -- status = error text
  end
  return status, table.concat(chunks), resp_headers, status_line
end

-- Sandbox object ------------------------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

function Sandbox:control(method, name, body)
  local status, data, _, err = M.http_request{
    method = method,
    url = ("http://127.0.0.1:%d/_sandbox/%s"):format(self.port, name),
    body = body and cjson.encode(body) or (method == "POST" and "" or nil),
    headers = body and { ["content-type"] = "application/json" } or nil,
  }
  if not status then
    error("smsend sandbox: control request " .. name .. " failed: " .. tostring(err), 2)
  end
  local ok, decoded = pcall(cjson.decode, data)
  return status, ok and denull(decoded) or data
end

local function control_ok(self, method, name, body)
  local status, v = self:control(method, name, body)
  if status ~= 200 then
    error(("smsend sandbox: %s /_sandbox/%s → %s %s"):format(method, name, tostring(status),
      type(v) == "table" and cjson.encode(v) or tostring(v)), 3)
  end
  return v
end

-- What reached the gateway, oldest first; only the requests to `path` (e.g. "2fa/request") when given.
function Sandbox:requests(path)
  local all = control_ok(self, "GET", "requests")
  if not path then return all end
  local out = {}
  for _, r in ipairs(all) do
    if r.path == path then out[#out + 1] = r end
  end
  return out
end

-- The paths of what reached the gateway, oldest first, in one string: "login 2fa/request ...".
function Sandbox:paths()
  local out = {}
  for _, r in ipairs(control_ok(self, "GET", "requests")) do out[#out + 1] = r.path end
  return table.concat(out, " ")
end
function Sandbox:sms() return control_ok(self, "GET", "sms") end
function Sandbox:reset() return control_ok(self, "POST", "reset") end
function Sandbox:expire_sessions() return control_ok(self, "POST", "expire_sessions") end
function Sandbox:expire_pins() return control_ok(self, "POST", "expire_pins") end
function Sandbox:health() return control_ok(self, "GET", "health") end
function Sandbox:config(tbl)
  if tbl == nil then return control_ok(self, "GET", "config") end
  return control_ok(self, "POST", "config", tbl)
end

-- The number as the module would send it ("+39 347 123 4567" → "+393471234567"), so any spelling
-- the module accepts finds the PIN; unchanged when the module is not loadable or refuses it.
local function as_sent(recipient)
  local ok, smsend = pcall(require, "smsend")
  if ok and type(smsend) == "table" and type(smsend.normalize_recipient) == "function" then
    local ok2, normal = pcall(smsend.normalize_recipient, recipient)
    if ok2 and type(normal) == "string" then return normal end
  end
  return recipient
end

-- PIN last sent to recipient (string), or nil.
function Sandbox:last_pin(recipient)
  if type(recipient) ~= "string" then
    error("smsend sandbox: last_pin(recipient): recipient must be a string", 2)
  end
  local q = as_sent(recipient):gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end)
  local status, v = self:control("GET", "last_pin?recipient=" .. q)
  if status == 404 then return nil end
  if status ~= 200 or type(v) ~= "table" then
    error("smsend sandbox: last_pin → " .. tostring(status), 2)
  end
  return v.pin
end

-- The next gateway request (on the normal URL) behaves as /fault/<mode>/ would; raises on a mode
-- the gateway does not have.
function Sandbox:fault_next(mode)
  if type(mode) ~= "string" then
    error("smsend sandbox: fault_next(mode): mode must be a fault name such as \"drop\"", 2)
  end
  local status, v = self:control("POST", "config", { fault_next = mode })
  if status ~= 200 then
    error(("smsend sandbox: fault_next(%q): %s"):format(mode, type(v) == "table" and tostring(v.error)
      or tostring(v)), 2)
  end
end

-- A table for smsend.new: kind "token" (default: user_key and access_token) or "password"
-- (username and password, so the client logs in); extra fields are copied over it.
function Sandbox:options(kind, extra)
  if type(kind) == "table" then kind, extra = nil, kind end
  local o = { base_url = self.base_url, cainfo = self.cainfo }
  if kind == nil or kind == "token" then
    o.user_key, o.access_token = self.user_key, self.access_token
  elseif kind == "password" then
    o.username, o.password = self.username, self.password
  else
    error("smsend sandbox: options(kind): kind is \"token\" or \"password\"", 2)
  end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

function Sandbox:read_error_log()
  return read_file(self.error_log) or ""
end

function Sandbox:alive()
  return pid_alive(self.pid)
end

-- Stops the nginx of p (a sandbox, or the table its __gc sentinel holds) and removes its dir.
local function stop_process(p)
  if p.stopped then return end
  p.stopped = true
  local pid = p.pid
  if pid and pid_alive(pid) then
    run("kill -TERM " .. pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 10
    while pid_alive(pid) and socket.gettime() < deadline do sleep(0.02) end
    if pid_alive(pid) then
      run("kill -KILL " .. pid .. " 2>/dev/null")
      deadline = socket.gettime() + 5
      while pid_alive(pid) and socket.gettime() < deadline do sleep(0.02) end
    end
  end
  if p.remove_dir then
    run("rm -rf " .. shq(p.dir))
  end
end

function Sandbox:stop()
  if self.process then stop_process(self.process) end
  stop_process(self)
end

-- `local sb <close> = sandbox.start{}` (Lua 5.4) stops it at the end of the block.
Sandbox.__close = Sandbox.stop

-- start ---------------------------------------------------------------------------

local function prepare(opts)
  local sb = setmetatable({}, Sandbox)
  sb.session_ttl = opts.session_ttl or 300
  if type(sb.session_ttl) ~= "number" or sb.session_ttl <= 0 then
    error("smsend sandbox: session_ttl must be a positive number of seconds", 3)
  end
  sb.users = opts.users or M.DEFAULT_USERS
  if type(sb.users) ~= "table" or #sb.users == 0 then
    error("smsend sandbox: users must be a non-empty list", 3)
  end
  for i, u in ipairs(sb.users) do
    local function bad(what)
      error(("smsend sandbox: users[%d]: %s"):format(i, what), 4)
    end
    if type(u.username) ~= "string" or u.username == "" then bad("username required") end
    if type(u.password) ~= "string" then bad("password required") end
    if type(u.user_key) ~= "string" or not u.user_key:match("^[^;%c%s]+$") then
      bad("user_key required (no ';', spaces or control characters)")
    end
    if u.access_token ~= nil and (type(u.access_token) ~= "string"
        or not u.access_token:match("^[^;%c%s]+$")) then
      bad("access_token must be a string without ';', spaces or control characters")
    end
  end
  if opts.dir then
    assert(run("mkdir -p " .. shq(opts.dir)), "cannot create " .. opts.dir)
    sb.dir = abspath(opts.dir)
    sb.remove_dir = opts.remove_dir == true
  else
    local d = tmpdir("smsend-sandbox")
    assert(d, "smsend sandbox: mktemp -d failed")
    sb.dir = abspath(d)
    sb.remove_dir = opts.remove_dir ~= false
  end
  check_path(sb.dir, "state dir")
  check_path(M.lib_dir, "library")
  assert(run("mkdir -p " .. shq(sb.dir .. "/logs") .. " " .. shq(sb.dir .. "/tmp")))
  sb.error_log = sb.dir .. "/logs/error.log"
  sb.config_file = sb.dir .. "/sandbox-config.json"
  sb.console = opts.console
  if sb.console and sb.console:sub(1, 1) ~= "/" then
    sb.console = abspath(".") .. "/" .. sb.console
  end
  if sb.console then
    -- created here so it gets our umask (nginx runs with umask 0)
    local f = io.open(sb.console, "a")
    if not f then error("smsend sandbox: cannot write console file " .. sb.console, 3) end
    f:close()
  end
  sb.user = sb.users[1]
  sb.username, sb.password = sb.user.username, sb.user.password
  sb.user_key, sb.access_token = sb.user.user_key, sb.user.access_token
  return sb
end

local function try_start(sb, opts, nginx, modules)
  local tls = opts.tls ~= false
  local ipv6 = opts.ipv6
  if ipv6 == nil then ipv6 = ipv6_available() end
  sb.ipv6 = ipv6
  local want = tls and 5 or 1
  local ports = free_ports(want, ipv6)
  -- explicit ports: fail fast (nginx itself retries bind() for 2.5 s)
  local explicit = { opts.port ~= 0 and opts.port or nil }
  for _, p in pairs(opts.tls_ports or {}) do explicit[#explicit + 1] = p end
  for _, p in ipairs(explicit) do
    if not port_free(p, ipv6) then
      return false, ("port %d is already in use"):format(p), true
    end
  end
  sb.port = (opts.port and opts.port ~= 0) and opts.port or ports[1]
  sb.base_url = ("http://127.0.0.1:%d%s"):format(sb.port, M.BASE_PATH)
  local port = sb.port
  -- works as sb.url_for(name) and as sb:url_for(name)
  sb.url_for = function(a, b)
    local fault = type(a) == "table" and b or a
    return ("http://127.0.0.1:%d/fault/%s/"):format(port, fault)
  end
  if tls then
    sb.tls_ports, sb.tls_urls = {}, {}
    local tp = opts.tls_ports or {}
    for i, kind in ipairs(M.TLS_KINDS) do
      local p = tp[kind] or ports[i + 1]
      sb.tls_ports[kind] = p
      sb.tls_urls[kind] = ("https://127.0.0.1:%d%s"):format(p, M.BASE_PATH)
    end
  else
    sb.tls_ports, sb.tls_urls = nil, nil
  end

  write_file(sb.config_file, cjson.encode({
    users = sb.users,
    session_ttl = sb.session_ttl,
    console = sb.console,
    default_sender = opts.default_sender,
    owner_pid = sb.owner_pid,
    remove_dir_on_orphan = opts.remove_dir_on_orphan == true,
    dir = sb.dir,
  }))
  run("chmod 600 " .. shq(sb.config_file))
  write_file(sb.dir .. "/nginx.conf", nginx_conf(sb, modules, opts))
  os.remove(sb.dir .. "/nginx.pid")
  local out = sb.dir .. "/logs/nginx.out"
  local ok = run(shq(nginx) .. " -p " .. shq(sb.dir .. "/") .. " -c " .. shq(sb.dir .. "/nginx.conf")
    .. " -e " .. shq(sb.error_log) .. " >" .. shq(out) .. " 2>&1 </dev/null")
  if not ok then
    return false, "nginx exited with an error:\n" .. tail(out, 10) .. "\n--- error log ---\n"
      .. tail(sb.error_log, 20)
  end
  -- nginx daemonizes; the pid file appears right after
  local deadline = socket.gettime() + (opts.start_timeout or 10)
  local pid
  while socket.gettime() < deadline do
    pid = tonumber((read_file(sb.dir .. "/nginx.pid") or ""):match("%d+"))
    if pid then break end
    sleep(0.01)
  end
  if not pid then
    return false, "nginx wrote no pid file\n--- error log ---\n" .. tail(sb.error_log, 20)
  end
  sb.pid = pid
  local all = { sb.port }
  if sb.tls_ports then
    for _, kind in ipairs(M.TLS_KINDS) do all[#all + 1] = sb.tls_ports[kind] end
  end
  for _, p in ipairs(all) do
    while not port_open(p) do
      if not pid_alive(pid) then
        return false, "nginx died during start-up\n--- error log ---\n" .. tail(sb.error_log, 20)
      end
      if socket.gettime() > deadline then
        return false, ("port %d not accepting connections\n--- error log ---\n"):format(p)
          .. tail(sb.error_log, 20)
      end
      sleep(0.01)
    end
  end
  local status, body = M.http_request{ url = ("http://127.0.0.1:%d/_sandbox/health"):format(sb.port) }
  if status ~= 200 then
    return false, "health check failed: " .. tostring(status) .. " " .. tostring(body)
      .. "\n--- error log ---\n" .. tail(sb.error_log, 20)
  end
  return true
end

-- sandbox.launch(opts) → started sandbox (see sandbox/README.md for opts)
function M.launch(opts)
  opts = opts or {}
  local nginx = M.find_nginx(opts.nginx)
  local modules = M.module_directives(nginx, opts.modules_dir)
  local sb = prepare(opts)
  if opts.owner_pid ~= false then
    sb.owner_pid = opts.owner_pid or my_pid()
  end
  if opts.tls ~= false then
    local cert_dir = opts.cert_dir or (sb.dir .. "/certs")
    if cert_dir:sub(1, 1) ~= "/" then cert_dir = abspath(".") .. "/" .. cert_dir end
    sb.cert_dir = check_path(cert_dir, "certificate")
    local ok, err = pcall(M.ensure_certs, sb.cert_dir)
    if not ok then
      sb:stop()
      error(err, 2)
    end
    sb.cert_dir = abspath(sb.cert_dir)
    sb.ca_file = sb.cert_dir .. "/ca.crt"
  end
  local auto_ports = not opts.port or opts.port == 0
  local err
  for _ = 1, (auto_ports and 3 or 1) do
    local ok, final
    ok, err, final = try_start(sb, opts, nginx, modules)
    if ok then return sb end
    if final then
      if sb.remove_dir then run("rm -rf " .. shq(sb.dir)) end
      error("smsend sandbox: " .. err, 2)
    end
    if sb.pid and pid_alive(sb.pid) then
      run("kill -KILL " .. sb.pid .. " 2>/dev/null")
    end
    sb.pid = nil
    -- a port picked as free may have been taken meanwhile: try other ports
    if not err:find("Address already in use", 1, true) then break end
  end
  -- the state dir is kept so its logs can be read
  error("smsend sandbox: failed to start nginx (state dir " .. sb.dir .. "): " .. err, 2)
end

-- A sandbox from start() stops when collected. Lua 5.4 finalizes the table itself; LuaJIT runs __gc
-- only for userdata, so there a newproxy sentinel holds what stopping needs (never sb, which it
-- would keep alive).
local UserSandbox = { __index = Sandbox, __close = Sandbox.stop,
                      __gc = function(sb) stop_process(sb.process) end }

-- sandbox.start{ tls = false, ... } → a started sandbox for a user's tests: base_url (the HTTPS
-- one with tls = true, trusted through cainfo), user_key, access_token, username, password,
-- cainfo, options(), last_pin(), fault_next(), expire_sessions(), stop(). It stops on sb:stop(),
-- at the end of a `<close>` block, when collected, when the Lua state closes, and at the latest
-- half a second after this process is gone (nginx watches it). Other options: those of launch.
function M.start(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("smsend sandbox: start(opts): opts must be a table", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.tls = o.tls == true
  if o.dir == nil then o.remove_dir_on_orphan = true end
  local ok, sb = pcall(M.launch, o)
  if not ok then error(sb, 2) end
  sb.http_url = sb.base_url
  if sb.tls_urls then
    sb.base_url = sb.tls_urls.tls
    sb.cainfo = sb.ca_file
  end
  local process = { pid = sb.pid, dir = sb.dir, remove_dir = sb.remove_dir }
  sb.process = process
  local newproxy = rawget(_G, "newproxy") -- LuaJIT's; read this way so strict-mode globals allow it
  if newproxy then
    sb.sentinel = newproxy(true)
    getmetatable(sb.sentinel).__gc = function() stop_process(process) end
  end
  return setmetatable(sb, UserSandbox)
end

return M
