# bench/bench.mk — `make bench`: throughput, CPU, memory, connections and callgrind instruction
# counts of the module against a plain C libcurl loop, LuaSocket/LuaSec and the curl CLI, over
# HTTP and HTTPS against a local nginx. Included by the top Makefile; see docs/benchmarks.md.
#
# Counts (defaults keep the whole run within a few minutes on 2 shared cores):
#   BENCH_N=2000        requests per timed run, libcurl clients (C, module)
#   BENCH_N_SLOW=100    requests per timed run, LuaSocket and curl CLI (a connection per request)
#   BENCH_RUNS=5        rounds (each client once per round, side by side); medians reported
#   BENCH_MEM_RUNS=5    runs of BENCH_N in one process for the memory check (VmRSS run 2 -> last)
#   BENCH_CG_N1=200 BENCH_CG_N2=1200      callgrind request counts (Ir/req = difference / (N2-N1))
#   BENCH_CG_SLOW_N1=10 BENCH_CG_SLOW_N2=60  the same for LuaSocket
#   BENCH_CG_CURL=3     curl CLI processes measured under callgrind (median)
#   BENCH_JOBS=1        callgrind runs in parallel (more than 1 adds ~1% noise: nginx needs a core)
#   BENCH_CALLGRIND=0   skip callgrind;  BENCH_ONLY=object54,module54  only these clients (+ the C limit)
#   BENCH_PROTOS=http,https   BENCH_README=1  also copy the results into docs/benchmarks.md
#   BENCH_OPENRESTY=0   skip bench/openresty's part (run when present; ~3 min; its own knobs, e.g.
#                       BENCH_DURATION; BENCH_OPENRESTY_RUNS is handed to it as its BENCH_RUNS)

BENCH_OUT ?= $(BUILD)/bench
BENCH_LIMIT = $(BENCH_OUT)/limit
BENCH_N ?= 2000
BENCH_N_SLOW ?= 100
BENCH_RUNS ?= 5
BENCH_MEM_RUNS ?= 5
BENCH_CG_N1 ?= 200
BENCH_CG_N2 ?= 1200
BENCH_CG_SLOW_N1 ?= 10
BENCH_CG_SLOW_N2 ?= 60
BENCH_CG_CURL ?= 3
BENCH_JOBS ?= 1
BENCH_CALLGRIND ?= 1
BENCH_ONLY ?=
BENCH_PROTOS ?= http,https
BENCH_README ?= 0
BENCH_OPENRESTY ?= 1

.PHONY: bench bench-limit

# Same compiler flags as the module (-O2 -g), so the C limit is built the way the module is.
$(BENCH_LIMIT): bench/limit.c bench/bench.mk
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) $(CURL_CFLAGS) -o $@ bench/limit.c $(LDFLAGS) $(CURL_LIBS)

bench-limit: $(BENCH_LIMIT)

bench: $(LUA54_SO) $(LUAJIT_SO)
	@sh .ci/deps bench
	@command -v /usr/bin/time >/dev/null 2>&1 || { echo "bench: installing GNU time"; \
	  if [ "$$(id -u)" = 0 ]; then S=; else S=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$S apt-get install -y -qq --no-install-recommends time >/dev/null; }
	@$(MAKE) -s --no-print-directory $(BENCH_LIMIT)
	@BENCH_OUT=$(BENCH_OUT) BENCH_LIMIT=$(BENCH_LIMIT) \
	  BENCH_LUA54_CPATH="$(CURDIR)/$(BUILD)/lua5.4/?.so" BENCH_LUAJIT_CPATH="$(CURDIR)/$(BUILD)/luajit/?.so" \
	  BENCH_N=$(BENCH_N) BENCH_N_SLOW=$(BENCH_N_SLOW) BENCH_RUNS=$(BENCH_RUNS) BENCH_MEM_RUNS=$(BENCH_MEM_RUNS) \
	  BENCH_CG_N1=$(BENCH_CG_N1) BENCH_CG_N2=$(BENCH_CG_N2) \
	  BENCH_CG_SLOW_N1=$(BENCH_CG_SLOW_N1) BENCH_CG_SLOW_N2=$(BENCH_CG_SLOW_N2) BENCH_CG_CURL=$(BENCH_CG_CURL) \
	  BENCH_JOBS=$(BENCH_JOBS) BENCH_CALLGRIND=$(BENCH_CALLGRIND) BENCH_ONLY="$(BENCH_ONLY)" \
	  BENCH_PROTOS=$(BENCH_PROTOS) BENCH_README=$(BENCH_README) BENCH_OPENRESTY=$(BENCH_OPENRESTY) \
	  lua5.4 bench/run.lua
