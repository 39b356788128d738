# bench/bench.mk — `make bench`: instructions per request (callgrind), throughput, CPU, memory
# and connections of the module against the bare libcurl loop of issue 14 (bench/bare.c, the
# reference), the C limit (bench/limit.c), LuaSocket/LuaSec and the curl CLI, over HTTP and HTTPS
# against a local nginx. Included by the top Makefile; see docs/benchmarks.md.
#
# Counts (the defaults keep the whole run, OpenResty part included, within about 10 minutes on 2
# shared cores):
#   BENCH_N=2000        requests per timed run, libcurl clients (C loops, module)
#   BENCH_N_SLOW=50     requests per timed run, LuaSocket and curl CLI (a connection per request)
#   BENCH_RUNS=5        rounds (each client once per round, side by side); medians reported
#   BENCH_MEM_RUNS=10   runs of BENCH_N in one process for the memory check (VmRSS run 5 -> last)
#   BENCH_CG_N1=200 BENCH_CG_N2=1200      callgrind request counts (Ir/req = difference / (N2-N1))
#   BENCH_CG_SLOW_N1=10 BENCH_CG_SLOW_N2=60  the same for LuaSocket
#   BENCH_CG_CURL=3     curl CLI processes measured under callgrind (median)
#   BENCH_CG_REPEAT=3   callgrind pairs for the rows with a target (bare, object54, module54, poll54; median)
#   BENCH_JOBS=1        callgrind runs in parallel (more than 1 adds ~1% noise: nginx needs a core)
#   BENCH_CALLGRIND=0   skip callgrind;  BENCH_ONLY=object54,module54  only these rows (+ the bare loop)
#   BENCH_SCALE=0       skip the scale rows (ops in flight, cached configurations, messageBody size)
#   BENCH_LIBCURL_OPTS=0  skip the table of libcurl's options one at a time (bench/options.c)
#   BENCH_PIN=0         pin nothing (default: clients on one CPU, nginx on another, with taskset)
#   BENCH_UNPINNED=0    when pinned, skip the second, unpinned set of timed rounds
#   BENCH_PROTOS=http,https   BENCH_README=1  also copy the results into docs/benchmarks.md
#   BENCH_OPENRESTY=0   skip bench/openresty's part (run when present; ~3 min; its own knobs, e.g.
#                       BENCH_DURATION; BENCH_OPENRESTY_RUNS is handed to it as its BENCH_RUNS)

BENCH_OUT ?= $(BUILD)/bench
BENCH_BARE = $(BENCH_OUT)/bare
BENCH_LIMIT = $(BENCH_OUT)/limit
BENCH_OPTIONS = $(BENCH_OUT)/options
BENCH_N ?= 2000
BENCH_N_SLOW ?= 50
BENCH_RUNS ?= 5
BENCH_MEM_RUNS ?= 10
BENCH_CG_N1 ?= 200
BENCH_CG_N2 ?= 1200
BENCH_CG_SLOW_N1 ?= 10
BENCH_CG_SLOW_N2 ?= 60
BENCH_CG_CURL ?= 3
BENCH_CG_REPEAT ?= 3
BENCH_JOBS ?= 1
BENCH_CALLGRIND ?= 1
BENCH_ONLY ?=
BENCH_PROTOS ?= http,https
BENCH_README ?= 0
BENCH_OPENRESTY ?= 1
BENCH_SCALE ?= 1
BENCH_LIBCURL_OPTS ?= 1
BENCH_PIN ?= 1
BENCH_UNPINNED ?= 1

.PHONY: bench bench-loops

# The C reference loops, with the module's compiler flags (-O2 -g): built the way the module is.
$(BENCH_BARE) $(BENCH_LIMIT) $(BENCH_OPTIONS): $(BENCH_OUT)/%: bench/%.c bench/loop.h bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) $(CURL_CFLAGS) -o $@ bench/$*.c $(LDFLAGS) $(CURL_LIBS) -ldl
$(BENCH_OPTIONS): bench/bare.c

# poll(2) from Lua, for the op:poll()-driven rows' wait (see bench/pollwait.c), per interpreter
BENCH_POLLWAIT = $(BENCH_OUT)/lua5.4/pollwait.so $(BENCH_OUT)/luajit/pollwait.so
$(BENCH_OUT)/lua5.4/pollwait.so: bench/pollwait.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) $(LUA54_CFLAGS) -shared -o $@ bench/pollwait.c
$(BENCH_OUT)/luajit/pollwait.so: bench/pollwait.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) $(LUAJIT_CFLAGS) -shared -o $@ bench/pollwait.c

bench-loops: $(BENCH_BARE) $(BENCH_LIMIT) $(BENCH_OPTIONS) $(BENCH_POLLWAIT)

bench: $(LUA54_SO) $(LUAJIT_SO)
	@sh .ci/deps bench
	@command -v /usr/bin/time >/dev/null 2>&1 || { echo "bench: installing GNU time"; \
	  if [ "$$(id -u)" = 0 ]; then S=; else S=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq --no-install-recommends time >/dev/null; }
	@$(MAKE) -s --no-print-directory $(BENCH_BARE) $(BENCH_LIMIT) $(BENCH_OPTIONS) $(BENCH_POLLWAIT)
	@BENCH_OUT=$(BENCH_OUT) BENCH_BARE=$(BENCH_BARE) BENCH_LIMIT=$(BENCH_LIMIT) BENCH_OPTIONS_BIN=$(BENCH_OPTIONS) \
	  BENCH_LUA54_CPATH="$(CURDIR)/$(BUILD)/lua5.4/?.so" BENCH_LUAJIT_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so" \
	  BENCH_LUA54_WAIT="$(abspath $(BENCH_OUT))/lua5.4/?.so" BENCH_LUAJIT_WAIT="$(abspath $(BENCH_OUT))/luajit/?.so" \
	  BENCH_N=$(BENCH_N) BENCH_N_SLOW=$(BENCH_N_SLOW) BENCH_RUNS=$(BENCH_RUNS) BENCH_MEM_RUNS=$(BENCH_MEM_RUNS) \
	  BENCH_CG_N1=$(BENCH_CG_N1) BENCH_CG_N2=$(BENCH_CG_N2) \
	  BENCH_CG_SLOW_N1=$(BENCH_CG_SLOW_N1) BENCH_CG_SLOW_N2=$(BENCH_CG_SLOW_N2) BENCH_CG_CURL=$(BENCH_CG_CURL) \
	  BENCH_CG_REPEAT=$(BENCH_CG_REPEAT) \
	  BENCH_JOBS=$(BENCH_JOBS) BENCH_CALLGRIND=$(BENCH_CALLGRIND) BENCH_ONLY="$(BENCH_ONLY)" \
	  BENCH_PROTOS=$(BENCH_PROTOS) BENCH_README=$(BENCH_README) BENCH_OPENRESTY=$(BENCH_OPENRESTY) \
	  BENCH_SCALE=$(BENCH_SCALE) BENCH_LIBCURL_OPTS=$(BENCH_LIBCURL_OPTS) \
	  BENCH_PIN=$(BENCH_PIN) BENCH_UNPINNED=$(BENCH_UNPINNED) \
	  lua5.4 bench/run.lua
