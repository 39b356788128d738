---@meta smsend.resty
-- types/smsend_resty.lua — LuaLS definitions for `require "smsend.resty"`, the OpenResty helper.
-- Declarations only, never loaded at run time (see types/smsend.lua for the module itself).

---Runs smsend's module-level calls through an nginx thread pool (`ngx.run_worker_thread`) inside
---nginx, and calls the module directly elsewhere. Returns the same status tables; failures of the
---thread bridge (no such pool, a phase where nginx cannot wait, no free thread VM) come back as
---status tables too (`invalid_request`, `busy` or `out_of_memory`), never as a silent block. With a
---`shared_dict`, request_pin first claims the number there for every worker of the nginx
---(min_interval, pins_per_window, window, guard_fail): a refused claim is `cooldown` at once.
---With a `metrics_dict` and `resty.init_worker()`, `resty.metrics()` sums smsend's counters over
---every worker of the nginx.
---@class smsend.resty
---@field DEFAULT_POOL string The pool name used when none is configured: "smsend".
local resty = {}

---Per-call bridge settings.
---@class smsend.resty.how
---@field pool string? Thread pool for this call (default: the configured one).

---Bridge settings of this Lua VM.
---@class smsend.resty.settings
---@field pool string The thread pool name, as in `thread_pool NAME threads=N;`.
---@field shared_dict string|false The `lua_shared_dict NAME size;` that holds claims, or false (none, the default).
---@field metrics_dict string|false The `lua_shared_dict NAME size;` that sums the workers' counters, or false (none, the default).
---@field metrics_interval number Seconds between two publications of a worker's counters (default 1).

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

---Sets the default thread pool, the claims dict and the metrics dict of this Lua VM (call it in
---init_by_lua so every worker inherits them). Raises on an unknown setting, a pool that is not a
---non-empty string, a shared_dict or metrics_dict that is neither a non-empty string nor false, or
---a metrics_interval that is not a number of seconds > 0.
---@param settings smsend.resty.settings
---@return smsend.resty.settings previous
function resty.configure(settings) end

---The current settings.
---@return smsend.resty.settings
function resty.settings() end

---From init_worker_by_lua, in every worker: takes the worker's counters as they are and starts the
---`ngx.timer.every(metrics_interval)` that adds their growth to the metrics dict (its last run, at
---a graceful exit, too). Raises elsewhere, without a metrics_dict, or without its lua_shared_dict.
function resty.init_worker() end

---The Prometheus text (format 0.0.4) of smsend's counters, with the names, types, labels and
---order of `require("smsend").metrics()`. In an nginx worker: the sum over every worker (raises
---without metrics_dict and init_worker); elsewhere: this process's counters. Outcomes that
---smsend.resty answers itself (busy, claims refused by the dict, bridge errors) are counted too.
---@return string
function resty.metrics() end

return resty
