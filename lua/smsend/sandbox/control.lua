-- smsend sandbox: control endpoints under /_sandbox/ (no auth, not recorded).

local state = require "smsend.sandbox.state"
local gateway = require "smsend.sandbox.gateway"

local M = {}

local function send(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.OK)
end

local function json(status, tbl)
  return send(status, state.encode(tbl))
end

local function list(dict, prefix)
  local out = {}
  local n = dict:get("n") or 0
  for i = 1, n do
    local raw = dict:get(prefix .. i)
    if raw then out[#out + 1] = raw end   -- already JSON text
  end
  return state.json_array(out)
end

local function clear(dict)
  dict:flush_all()
  dict:flush_expired()
end

local routes = {}

routes["GET health"] = function()
  return json(200, { status = "OK" })
end

routes["GET requests"] = function()
  return send(200, list(state.dict.requests, "r:"))
end

routes["GET sms"] = function()
  return send(200, list(state.dict.sms, "s:"))
end

routes["GET last_pin"] = function()
  local recipient = ngx.req.get_uri_args().recipient
  if type(recipient) ~= "string" or recipient == "" then
    return json(400, { status = "ERROR", error = "recipient parameter required" })
  end
  local pin = state.dict.pins:get("last:" .. gateway.normalize_recipient(recipient))
  if not pin then
    return json(404, { status = "ERROR", error = "no PIN sent to this recipient" })
  end
  return json(200, { recipient = recipient, pin = pin })
end

routes["POST reset"] = function()
  clear(state.dict.requests)
  clear(state.dict.sms)
  clear(state.dict.pins)
  clear(state.dict.sessions)
  return json(200, { status = "OK" })
end

routes["POST expire_sessions"] = function()
  clear(state.dict.sessions)
  return json(200, { status = "OK" })
end

-- Make every pending PIN expired (deterministic "PIN expired" for tests).
routes["POST expire_pins"] = function()
  local pins = state.dict.pins
  local n = 0
  for _, key in ipairs(pins:get_keys(0)) do
    if not key:find("^last:") then
      local rec = state.json_decode(pins:get(key) or "")
      if rec then
        rec.expires_at = ngx.now() - 1
        pins:set(key, state.encode(rec))
        n = n + 1
      end
    end
  end
  return json(200, { status = "OK", expired = n })
end

routes["GET config"] = function()
  return json(200, state.get_config())
end

routes["POST config"] = function()
  ngx.req.read_body()
  local raw = ngx.req.get_body_data() or ""
  local cfg = raw:match("^%s*{") and state.json_decode(raw)
  if type(cfg) ~= "table" then
    return json(400, { status = "ERROR", error = "body must be a JSON object" })
  end
  for k, v in pairs(cfg) do
    if k == "session_ttl" then
      if type(v) ~= "number" or v <= 0 then
        return json(400, { status = "ERROR", error = "session_ttl must be a positive number" })
      end
    elseif k == "drop_next" then
      if v == true then
        cfg[k] = 1
      elseif v == false then
        cfg[k] = 0
      elseif type(v) ~= "number" or v < 0 or v % 1 ~= 0 then
        return json(400, { status = "ERROR", error = "drop_next must be a boolean or a count" })
      end
    elseif k == "fault_next" then
      if type(v) ~= "string" or (v ~= "" and not gateway.is_fault(v)) then
        return json(400, { status = "ERROR", error = "fault_next must be a fault name" })
      end
    elseif k == "default_sender" then
      if type(v) ~= "string" or v == "" then
        return json(400, { status = "ERROR", error = "default_sender must be a non-empty string" })
      end
    else
      return json(400, { status = "ERROR", error = "unknown setting: " .. tostring(k) })
    end
  end
  for k, v in pairs(cfg) do
    state.dict.config:set(k, v)
  end
  return json(200, state.get_config())
end

function M.handle()
  local ok, err = xpcall(function()
    local name = ngx.var.uri:match("^/_sandbox/([%w_]+)$")
    local route = name and routes[ngx.req.get_method() .. " " .. name]
    if not route then
      return json(404, { status = "ERROR", error = "unknown sandbox control endpoint" })
    end
    return route()
  end, debug.traceback)
  if not ok then
    state.log(ngx.ERR, "sandbox: control error: " .. tostring(err))
    if not ngx.headers_sent then
      return json(500, { status = "ERROR", error = "sandbox internal error" })
    end
  end
end

return M
