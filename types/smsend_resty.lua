---@meta smsend.resty
-- types/smsend_resty.lua — LuaLS definitions for `require "smsend.resty"`, the OpenResty helper.
-- Declarations only, never loaded at run time (see types/smsend.lua for the module itself).

---Runs smsend's module-level calls through an nginx thread pool (`ngx.run_worker_thread`) inside
---nginx, and calls the module directly elsewhere. Returns the same status tables; failures of the
---thread bridge (no such pool, a phase where nginx cannot wait, no free thread VM) come back as
---status tables too (`invalid_request` or `out_of_memory`), never as a silent block.
---@class smsend.resty
---@field DEFAULT_POOL string The pool name used when none is configured: "smsend".
local resty = {}

---Per-call bridge settings.
---@class smsend.resty.how
---@field pool string? Thread pool for this call (default: the configured one).

---Bridge settings of this Lua VM.
---@class smsend.resty.settings
---@field pool string The thread pool name, as in `thread_pool NAME threads=N;`.

---Sends a PIN: `opts` is the one plain table of `require("smsend").request_pin` (request fields and
---`smsend.new` options; strings, numbers and booleans only, as they cross into a thread).
---@param opts table
---@param how smsend.resty.how?
---@return smsend.status
function resty.request_pin(opts, how) end

---Checks a PIN: `opts` is the one plain table of `require("smsend").verify_pin`.
---@param opts table
---@param how smsend.resty.how?
---@return smsend.status
function resty.verify_pin(opts, how) end

---Sets the default thread pool of this Lua VM (call it in init_by_lua so every worker inherits it).
---Raises on an unknown setting or a pool that is not a non-empty string.
---@param settings smsend.resty.settings
---@return smsend.resty.settings previous
function resty.configure(settings) end

---The current settings.
---@return smsend.resty.settings
function resty.settings() end

return resty
