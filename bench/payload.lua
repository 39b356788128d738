-- payload.lua — what every client of `make bench` sends: the credentials, the request fields, and
-- the JSON body the module builds from them (the C loops and the curl CLI are handed that body).
-- Loaded by run.lua (Lua 5.4) and client.lua (Lua 5.4 and LuaJIT) with dofile.

local P = {
  USER_KEY = "UK", TOKEN = "TOK",
  RECIPIENT = "+393471234567", SENDER = "MyApp", EXPIRY = 5,
  MESSAGE_BYTES = 20,   -- the default messageBody, "Your code is: %PIN%."
}

-- The access token of configuration i of the module-level cache rows: all three bytes long, so
-- every configuration sends requests of the same length; configuration 1 is everybody's TOKEN.
function P.token(i)
  if i == 1 then return P.TOKEN end
  return "TK" .. i
end

-- A messageBody of exactly `bytes` bytes (at least 20): the default text, then words. Plain
-- ASCII with nothing JSON has to escape, so P.body can put it in as it is.
function P.message(bytes)
  bytes = bytes or P.MESSAGE_BYTES
  local s = "Your code is: %PIN%."
  assert(bytes >= #s, "messageBody of at least 20 bytes")
  local words = " It expires in five minutes; nobody from us will ever ask you for it."
  if #s == bytes then return s end
  while #s < bytes do s = s .. words end
  return s:sub(1, bytes - 1) .. "."  -- cut where it falls, but never ending in a space
end

-- The JSON the module sends for these fields (its key order, no spaces).
function P.body(message)
  return string.format('{"recipient":"%s","senderName":"%s","expiry":%d,"messageBody":"%s"}',
    P.RECIPIENT, P.SENDER, P.EXPIRY, message or P.message())
end

return P
