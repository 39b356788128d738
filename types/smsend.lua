---@meta smsend
-- types/smsend.lua — LuaLS (lua-language-server) definitions for `require "smsend"`.
-- Declarations only, never loaded at run time: add this folder to `workspace.library`.

---The smsend 2FA gateway client: request a PIN by SMS, verify what the user typed.
---Misuse (an argument of the wrong type) raises; data problems come back as status tables
---(or `nil, message` from `smsend.new` and the SMS helpers).
---@class smsend
---@field _VERSION string Version of this module, e.g. "0.1.0".
local smsend = {}

---Stable error codes of a failed call; never renamed, new ones may be added.
---@alias smsend.error_code
---| "invalid_request"   # A field or option was wrong; nothing was sent (see `field`).
---| "bad_request"       # The gateway answered HTTP 400.
---| "unauthorized"      # HTTP 401 (after one fresh login when username/password are given), or no credentials.
---| "not_found"         # HTTP 404: unknown user_key or path.
---| "rate_limited"      # HTTP 429, refused before the gateway acted (retryable); see `retry_after`.
---| "server_error"      # HTTP 5xx; see `retry_after` for 503.
---| "unexpected_status" # Any other HTTP status.
---| "bad_response"      # HTTP 200 whose body is not what the gateway promises.
---| "timeout"           # connect_timeout or timeout passed; `retryable` says whether the request had gone out.
---| "connect_failed"    # The connection to the gateway (or proxy) was refused or could not be made.
---| "resolve_failed"    # The gateway's host name did not resolve.
---| "tls_failed"        # TLS handshake or certificate verification failed.
---| "network_error"     # Any other transport failure.
---| "wrong_pin"         # verify_pin: the gateway rejected the PIN; see `tries_remaining`.
---| "login_failed"      # username/password login refused by the gateway.
---| "cooldown"          # request_pin within `min_interval` of the last one to this recipient (or past `pins_per_window`).
---| "out_of_memory"     # An allocation failed; `retryable` says whether anything had been sent.
---| "guard_unavailable" # The guard's store (Redis) could not be reached and `guard_fail` is "closed"; nothing was sent.
---| "country_not_allowed" # The recipient's calling code is not in `allowed_countries`; nothing was sent.
---| "busy"              # No worker was free to take the call (OpenResty's thread pool or queue); nothing was sent.
---| "cancelled"         # op:cancel(), a collected op, or client:close() with the op in flight.

---Which login a username/password client performs: a session key or an access token.
---@alias smsend.auth_mode
---| "session" # GET login_path → Session_key header (the default).
---| "token"   # GET token_path → Access_token header.

---The outcome of every gateway call. Fields that do not apply are nil.
---@class smsend.status
---@field ok boolean True when the call succeeded (check_session: also when the session is not valid, see `valid`).
---@field status integer? HTTP status of the gateway's answer; nil when no answer arrived.
---@field error smsend.error_code? Nil when `ok`, else the stable error code.
---@field message string Human-readable outcome, never containing a secret.
---@field body string? Raw response body (capped) when an answer arrived; never the answer of a successful login, which carries keys.
---@field field string? With "invalid_request": the name of the offending field or option.
---@field retryable boolean True only when the request certainly never reached the gateway, so repeating it cannot send a second SMS.
---@field elapsed number Seconds the call took, fractions included.
---@field retry_after number? Seconds to wait, from a 429/503 Retry-After header or the cooldown.
---@field tries_remaining integer? With "wrong_pin": attempts left for this PIN, when the gateway says.
---@field valid boolean? From check_session: whether the session or token is still accepted.

---Options of `smsend.new`. Credentials: `user_key` with `access_token` or `session_key`, or
---`username` with `password` (logs in lazily and once more after a 401). With no credential
---given, the SMSEND_USER_KEY, SMSEND_ACCESS_TOKEN, SMSEND_SESSION_KEY, SMSEND_USERNAME and
---SMSEND_PASSWORD environment variables are read; SMSEND_BASE_URL, SMSEND_CAINFO and
---SMSEND_GUARD_KEY when `base_url`, `cainfo` and `guard_key` are absent; one of these three set
---but empty is a configuration error.
---@class smsend.options
---@field user_key string? The gateway's user key (goes with access_token or session_key).
---@field access_token string? A long-lived access token (not together with session_key).
---@field session_key string? A session key from an earlier login (not together with access_token).
---@field username string? Account name, for logging in (goes with password).
---@field password string? Account password, for logging in (goes with username).
---@field auth smsend.auth_mode? Login kind for username/password: "session" (default) or "token".
---@field login_path string? Path of the session login, relative to base_url (default "login").
---@field token_path string? Path of the token login, relative to base_url (default "token").
---@field base_url string? Gateway root, https:// only (http:// for loopback); default "https://app.gateway.smsend.it/API/v1.0/REST/".
---@field timeout number? Seconds for a whole call, fractions allowed, above 0 and at most 86400 (default 10).
---@field connect_timeout number? Seconds to connect, fractions allowed, above 0 and at most 86400 (default 5).
---@field cainfo string? CA bundle file for verifying the gateway's certificate (SMSEND_CAINFO).
---@field capath string? CA certificate directory for verifying the gateway's certificate.
---@field proxy string? Proxy URL handed to libcurl.
---@field user_agent string? Text appended to the module's own "smsend-lua/VERSION" + libcurl User-Agent.
---@field min_interval number? Seconds between two PIN requests to one recipient (0 = off, the default).
---@field guard string? Where PIN requests are claimed: "process" (the default: every Lua state of the process) or "redis://[:password@]host:port[/db]" (every process using that Redis; a secret).
---@field guard_fail "closed"|"open"? When the guard's store cannot be reached: "closed" (the default) refuses with "guard_unavailable", "open" sends anyway.
---@field guard_key string? Secret of at least 16 bytes keying the hash under which numbers are kept in the guard's store (SMSEND_GUARD_KEY).
---@field pins_per_window integer? At most this many PIN requests to one recipient per `window` (0 = off, the default).
---@field window number? Seconds of the `pins_per_window` window (default 600).
---@field allowed_countries string? Calling codes a PIN may go to, e.g. "39,44,1"; any other recipient is "country_not_allowed".

---Fields of a PIN request.
---@class smsend.pin_request
---@field recipient string Phone number: "+" or "00" then 6 to 15 digits, the first not 0, e.g. "+393471234567" (see `smsend.normalize_recipient`).
---@field senderName string? Sender shown on the phone: 1 to 11 characters, or up to 16 digits.
---@field expiry integer? Minutes the PIN stays valid: a positive whole number.
---@field messageBody string? SMS text, valid UTF-8, at most 1600 bytes: the gateway replaces "%PIN%" with the PIN, or appends the PIN at the end when "%PIN%" is absent.

---Fields of a PIN verification.
---@class smsend.pin_verify
---@field recipient string The number the PIN was sent to, written as in request_pin.
---@field pin string What the user typed: 1 to 32 characters.

---`smsend.request_pin` takes the request fields and any `smsend.new` option in one table.
---@class smsend.request_pin_call: smsend.pin_request, smsend.options

---`smsend.verify_pin` takes the verification fields and any `smsend.new` option in one table.
---@class smsend.verify_pin_call: smsend.pin_verify, smsend.options

---A connection to the gateway, keeping credentials and a kept-alive connection between calls.
---Closed by `close()`, by the garbage collector (`__gc`), and on Lua 5.4 by leaving the scope
---of a `<close>` variable (`__close`): `local c <close> = assert(smsend.new{...})`.
---Any call but close/is_closed on a closed client raises; tostring(client) is a redacted description.
---@class smsend.client
local client = {}

---Sends a PIN by SMS to `q.recipient`.
---Never repeated by the module once the request may have reached the gateway.
---@param q smsend.pin_request
---@return smsend.status status
function client:request_pin(q) end

---Checks the PIN the user typed; a wrong one gives error "wrong_pin".
---@param q smsend.pin_verify
---@return smsend.status status
function client:verify_pin(q) end

---Logs in now with username/password instead of on the first call.
---@return smsend.status status "invalid_request" when the client has no username/password.
function client:login() end

---Asks the gateway whether the current session or token is still valid.
---@return smsend.status status `ok` with `valid` true or false; not logged in yet counts as not valid.
function client:check_session() end

---Starts a PIN request without waiting: the same call as request_pin, as a pollable op.
---Bad fields give an op born done with the invalid_request table (nothing sent).
---@param q smsend.pin_request
---@return smsend.op op
function client:request_pin_async(q) end

---Starts a PIN check without waiting (see request_pin_async).
---@param q smsend.pin_verify
---@return smsend.op op
function client:verify_pin_async(q) end

---Wipes the credentials and closes the connection, cancelling ops in flight; calling it again does nothing.
function client:close() end

---Whether `close()` (or the garbage collector) has closed this client.
---@return boolean closed
function client:is_closed() end

---A call in flight (client:request_pin_async / verify_pin_async). It keeps its client alive; collected
---in flight, it is cancelled. Waitable by cqueues (pollfd/events/timeout) and smsend.luv.
---@class smsend.op
local op = {}

---Never blocks: nil while in flight, the status table once done (the same table on every later call).
---@return smsend.status? status
function op:poll() end

---Blocks at most `seconds` (nil: until done); nil if still in flight when the time is up.
---@param seconds number?
---@return smsend.status? status
function op:wait(seconds) end

---True once finished (poll would return the table).
---@return boolean done
function op:done() end

---Abandons the call: error "cancelled", retryable only if no byte of the request was written.
---Returns the op's table as it stands when it was already done.
---@return smsend.status status
function op:cancel() end

---A descriptor that becomes readable when poll has work; the same for the op's life.
---@return integer fd
function op:pollfd() end

---Always "r" (cqueues' pollable protocol).
---@return string events
function op:events() end

---Seconds until poll must be called anyway; nil when libcurl set no timer, 0 when done.
---@return number? seconds
function op:timeout() end

---Creates a client. Raises when `opts` is not a table.
---@param opts smsend.options
---@return smsend.client? client The client, or nil on a bad option.
---@return string? message Why the options were refused.
function smsend.new(opts) end

---Sends a PIN with a client cached per configuration (configurations compared in C memory).
---Unknown keys and bad options come back as "invalid_request". Raises when `t` is not a table.
---@param t smsend.request_pin_call
---@return smsend.status status
function smsend.request_pin(t) end

---Checks a PIN with a client cached per configuration, as `smsend.request_pin`.
---@param t smsend.verify_pin_call
---@return smsend.status status
function smsend.verify_pin(t) end

---The canonical "+NNN…" form of a phone number: strips spaces, tabs, no-break spaces, dashes,
---dots and parentheses, turns a leading "00" into "+", and drops a "(0)" trunk prefix written
---after the country code. Returns nil, message for a number without an international prefix,
---with other characters, with a '+' not at the start, a country code starting with 0, or fewer
---than 6 or more than 15 digits. Raises when `s` is not a string.
---@param s string
---@return string? recipient e.g. "+393471234567" for "0039 (347) 123.4567".
---@return string? message Why `s` cannot be a recipient.
function smsend.normalize_recipient(s) end

---The guard's store key for a number: "smsend:v1:" and 32 hex digits of HMAC-SHA-256 over the
---normalised number, never the number itself; the same on every node with the same hash key. The
---hash key is `options.guard_key`, else $SMSEND_GUARD_KEY, else it is derived from the user_key
---(else the username) of `options` or of the SMSEND_* environment, so changing the user_key
---changes every key. Used by smsend.resty for its lua_shared_dict; nil, message when `recipient`
---is not a valid number. Raises when `recipient` is not a string or `options` not a table.
---@param recipient string
---@param options table? The options of the call (guard_key, user_key, username, ...).
---@return string? key
---@return string? message
function smsend.guard_key(recipient, options) end

---SMS encoding of a text.
---@alias smsend.sms_encoding
---| "GSM-7" # Every character is in the GSM 03.38 basic or extension table.
---| "UCS-2" # At least one character is not.

---What a text costs as SMS.
---@class smsend.sms_segments
---@field encoding smsend.sms_encoding GSM-7 when every character is in GSM 03.38, else UCS-2.
---@field units integer GSM-7: septets, with ^ { } \ [ ~ ] | € and form feed counting 2; UCS-2: UTF-16 code units (an emoji counts 2).
---@field segments integer SMS on the wire: 1 up to 160 GSM-7 / 70 UCS-2 units, else parts of 153 / 67; 0 for the empty text.

---Counts the encoding, units and segments of `text` (UTF-8) by GSM 03.38, strictly: a character
---outside its tables (even a look-alike such as "ç" or a curly quote) makes the whole text UCS-2.
---Parts are filled with whole characters: an extension character or a surrogate pair that would
---straddle a part boundary starts the next part, so `segments` can exceed ceil(units / 153 or 67).
---The empty text is 0 segments: there is nothing to send (request_pin refuses an empty
---messageBody). Counts `text` as given: "%PIN%" in a messageBody is not replaced first.
---Returns nil, message for invalid UTF-8; raises when `text` is not a string.
---@param text string
---@return smsend.sms_segments? count
---@return string? message Why `text` could not be counted (byte offset included).
function smsend.sms_segments(text) end

---A latency bucket of the gateway exchanges: how many took at most `le` seconds (cumulative).
---@class smsend.stats_bucket
---@field le number Upper bound in seconds (math.huge for the last bucket).
---@field count number Exchanges that took at most `le` seconds.

---Process-wide counters (every Lua state and thread of the process adds to the same ones).
---@class smsend.stats
---@field calls table<string, table<string, number>> Calls by operation ("request_pin", "verify_pin", "login", "check_session") and outcome ("ok" or an error code).
---@field logins number Logins made with username and password.
---@field renewals number Logins repeated after the gateway refused an expired session.
---@field cooldown_refusals number PIN requests refused by the cooldown, nothing sent.
---@field connections number Connections opened to the gateway or its proxy.
---@field gateway_seconds { count: number, sum: number, buckets: smsend.stats_bucket[] } Time of each HTTP exchange with the gateway.

---The process-wide counters; no phone number, PIN or secret is in them.
---@return smsend.stats stats
function smsend.stats() end

---The same counters in the Prometheus text exposition format (metric names `smsend_*`).
---@return string text
function smsend.metrics() end

return smsend
