#!/bin/sh
# bench/openresty/run.sh — PIN requests/s through ngx.run_worker_thread (pools of 1, 4, 16 threads)
# and /ping latency while PIN calls wait (worker thread vs a direct call in the content handler).
# Prints Markdown tables and writes them to build/bench/openresty.md. About 3 minutes.
# Knobs (environment): BENCH_DURATION=5 BENCH_RUNS=3 BENCH_CONNECTIONS=64 BENCH_POOLS=1,4,16 BENCH_SLOW_MS=50
#   BENCH_PING_SLOW_MS=200 BENCH_PING_LOAD=16 BENCH_PING_POOL=16 BENCH_PING_RATE=20 BENCH_OUT=build/bench
#   BENCH_DEBUG=1 (also prints how many gateway connections each slow-gateway row used)
set -eu
cd "$(dirname "$0")/../.."

if ! command -v wrk >/dev/null 2>&1; then
  # like `make check`, install what is missing when we may
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; }
  else
    echo "bench/openresty: needs wrk (apt-get install wrk)" >&2
    exit 1
  fi
fi

# nginx loads the LuaJIT build
make --no-print-directory build/luajit/smsend.so >/dev/null

if command -v lua5.4 >/dev/null 2>&1; then LUA=lua5.4; else LUA=luajit; fi
exec "$LUA" bench/openresty/run.lua
