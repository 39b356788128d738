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
dependencies = {
   "lua >= 5.1, < 5.5",
}
external_dependencies = {
   -- On Debian the header sits in the multiarch directory: pass
   -- CURL_INCDIR=/usr/include/x86_64-linux-gnu CURL_LIBDIR=/usr/lib/x86_64-linux-gnu (see `make rock`).
   CURL = {
      header = "curl/curl.h",
      library = "curl",
   },
}
build = {
   type = "builtin",
   modules = {
      ["smsend.resty"] = "lua/smsend/resty.lua",
      smsend = {
         sources = {
            "src/answer.c", "src/buf.c", "src/client.c", "src/config.c", "src/cooldown.c", "src/fields.c",
            "src/hash.c", "src/http.c", "src/json.c", "src/phone.c", "src/result.c", "src/secret.c",
            "src/stats.c", "src/urlenc.c", "src/utf8.c", "src/sms.c", "src/lclient.c", "src/lop.c",
            "src/lsms.c", "src/lstats.c", "src/smsend.c",
         },
         incdirs = { "$(CURL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)" },
         libraries = { "curl", "pthread" },
      },
   },
}
