rockspec_format = "3.0"
package = "smsend"
version = "scm-1"
source = {
   url = "git+https://github.com/smsend-lua/smsend-lua.git",
}
description = {
   summary = "Request and verify SMS two-factor PINs through the smsend REST gateway, from C.",
   detailed = [[
smsend is a C module for Lua 5.1 (LuaJIT, OpenResty) to 5.4 that asks the smsend REST gateway
to send a two-factor-authentication PIN by SMS and verifies the PIN the user typed. Credentials
live in C memory and are wiped when released; request fields are validated and JSON-encoded in C;
libcurl carries the requests over one kept-alive connection per client, with TLS verification
always on. Every call returns a status table with a stable error code, and the module-level
functions take one plain table, which is what OpenResty's ngx.run_worker_thread can pass.
]],
   license = "MIT",
   homepage = "https://github.com/smsend-lua/smsend-lua",
   issues_url = "https://github.com/smsend-lua/smsend-lua/issues",
   maintainer = "smsend-lua authors",
   labels = { "sms", "2fa", "otp", "authentication", "curl", "openresty" },
}
-- The code uses glibc and Linux calls (explicit_bzero, pthread_atfork, /dev/urandom).
supported_platforms = { "linux" }
dependencies = {
   "lua >= 5.1, < 5.5",
}
external_dependencies = {
   -- Found by their libraries: on Debian the libcurl header sits in the multiarch include
   -- directory, which the compiler searches by itself but luarocks does not.
   CURL = { library = "curl" },
   HIREDIS = { library = "hiredis" },
}
-- The Makefile's rock-install target compiles every src/*.c in one compiler run straight into
-- LIBDIR, so `luarocks make` leaves no build products in the tree. No -Werror here (that is only
-- for the project's own `make check`); -fvisibility=hidden so that luaopen_smsend is the only
-- exported symbol.
build = {
   type = "make",
   build_pass = false,
   build_variables = { CFLAGS = "$(CFLAGS) -fvisibility=hidden" },  -- unused (no build pass): quiets luarocks
   install_target = "rock-install",
   install_variables = {
      CC = "$(CC)",
      CFLAGS = "$(CFLAGS) -fvisibility=hidden",
      WERROR = "",
      LIBFLAG = "$(LIBFLAG)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      LIBDIR = "$(LIBDIR)",
      CPPFLAGS = "-I$(CURL_INCDIR) -I$(HIREDIS_INCDIR)",
      LDFLAGS = "-L$(CURL_LIBDIR) -L$(HIREDIS_LIBDIR)",
   },
   install = {
      lua = {
         ["smsend.resty"] = "lua/smsend/resty.lua",
         ["smsend.sandbox"] = "lua/smsend/sandbox.lua",
         ["smsend.sandbox.control"] = "lua/smsend/sandbox/control.lua",
         ["smsend.sandbox.gateway"] = "lua/smsend/sandbox/gateway.lua",
         ["smsend.sandbox.state"] = "lua/smsend/sandbox/state.lua",
         ["smsend.luv"] = "lua/smsend/luv.lua",
      },
      bin = {
         smsend = "bin/smsend",
         ["smsend-sandbox"] = "bin/smsend-sandbox",
      },
   },
}
