#!/bin/sh
# curl-loop.sh — the "curl command-line tool once per request" client of `make bench`: what a
# shell script does. Usage: sh bench/curl-loop.sh BASE_URL CAINFO|- N BODY
# Each request is a new curl process (so a new TCP connection and, over HTTPS, a full TLS
# handshake), with the module's headers and BODY (the module's JSON, from bench/payload.lua);
# the answer is captured with $(...) and checked for "status":"OK". With BENCH_VG_OUT set, each
# curl runs under valgrind --tool=callgrind writing to that file (the bench uses N=1 then).
set -u
base=$1
ca=$2
n=$3
body=$4
if [ "$ca" = - ]; then set -- ; else set -- --cacert "$ca"; fi
vg=${BENCH_VG_OUT:-}
i=0
while [ "$i" -lt "$n" ]; do
  if [ -n "$vg" ]; then
    out=$(valgrind --tool=callgrind --callgrind-out-file="$vg" curl -sS --http1.1 "$@" \
      -H 'user_key: UK' -H 'Access_token: TOK' -H 'Content-Type: application/json' \
      --data-binary "$body" "${base}2fa/request" 2>/dev/null) || exit 1
  else
    out=$(curl -sS --http1.1 "$@" \
      -H 'user_key: UK' -H 'Access_token: TOK' -H 'Content-Type: application/json' \
      --data-binary "$body" "${base}2fa/request") || exit 1
  fi
  case $out in
    *'"status":"OK"'*) ;;
    *) echo "curl-loop: unexpected answer: $out" >&2; exit 1 ;;
  esac
  i=$((i + 1))
done
