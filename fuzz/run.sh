#!/bin/sh
# run.sh — runs libFuzzer harnesses built by fuzz.mk, each for a fixed time on a scratch copy
# of its checked-in seed corpus, and prints one line per harness.
# Usage: fuzz/run.sh BUILD_DIR SECONDS NAME...   (NAME without the fuzz_ prefix)
# Exit status: 0 when no harness found anything, 1 otherwise.
set -u
dir="$1"; secs="$2"; shift 2
status=0
summary=""
for name in "$@"; do
  bin="$dir/fuzz_$name"
  work="$dir/corpus-$name"
  art="$dir/artifacts-$name/"
  log="$dir/fuzz_$name.log"
  rm -rf "$work" "$art"
  mkdir -p "$work" "$art"
  cp -R "fuzz/corpus/$name/." "$work/"
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  echo "fuzz: $name for ${secs}s (log: $log)"
  # -timeout: a single input taking seconds is a hang worth reporting.
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -artifact_prefix="$art" $dict "$work" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs="?"
  units=$(find "$work" -type f | wc -l | tr -d ' ')
  found=$(find "$art" -type f 2>/dev/null | head -n 1)
  if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
    line="$name: $execs executions, corpus $units files, nothing found"
  else
    status=1
    why=$(grep -m 1 -E '^==[0-9]+==ERROR|invariant failed|runtime error|^SUMMARY|deadly signal|ERROR: libFuzzer' "$log" | cut -c 1-160)
    line="$name: $execs executions, FOUND (exit $rc): ${found:-no artifact} ${why:+-- $why}"
  fi
  echo "  $line"
  summary="$summary
  $line"
done
echo "fuzz summary:$summary"
exit $status
