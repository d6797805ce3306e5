#!/usr/bin/env bash
# kv-server with --durability sync vs async, side by side on this machine:
# a 3-node cluster on loopback, fsync on, driven with the same wrk PUT load as
# ../shared/peers/etcd-server/bench.sh (put.lua: 1000 keys, 100-byte values)
# against the leader at 1, 16 and 64 connections. The modes alternate within
# each repetition, so both see the same machine conditions.
#
#   benchmarks/kv_durability.sh KV_SERVER [seconds per point] [repetitions] [modes]
#
# e.g. benchmarks/kv_durability.sh build-kv/examples/kv/kv-server 10 3 "sync async"
# Prints one line per point; extra kv-server flags can be given in KV_FLAGS.
# Needs wrk (apt-get install wrk) and put.lua (PUT_LUA=path, default the
# shared peers directory next to the repository).
set -u
kv=$1; secs=${2:-10}; reps=${3:-3}; modes=${4:-"sync async"}
here=$(cd "$(dirname "$0")" && pwd)
lua=${PUT_LUA:-$here/../../shared/peers/etcd-server/put.lua}
[ -f "$lua" ] || { echo "put.lua not found at $lua (set PUT_LUA)"; exit 2; }
work=$(mktemp -d /tmp/kvdur.XXXXXX)
pids=()
stop_cluster() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
cleanup() { stop_cluster; rm -rf "$work"; }
trap cleanup EXIT INT TERM

peers="1=127.0.0.1:17491,2=127.0.0.1:17492,3=127.0.0.1:17493"
clients="1=127.0.0.1:18491,2=127.0.0.1:18492,3=127.0.0.1:18493"
for rep in $(seq 1 "$reps"); do
  for mode in $modes; do
    rm -rf "$work"/k*
    for i in 1 2 3; do
      # shellcheck disable=SC2086
      "$kv" --id $i --peers "$peers" --client-addrs "$clients" --data "$work/k$i" --listen 127.0.0.1:1849$i \
        --durability "$mode" ${KV_FLAGS:-} >"$work/k$i.log" 2>&1 &
      pids+=($!)
    done
    kl=""
    for _ in $(seq 1 50); do
      for i in 1 2 3; do curl -s http://127.0.0.1:1849$i/status | grep -q '"role":"leader"' && kl=http://127.0.0.1:1849$i; done
      [ -n "$kl" ] && break
      sleep 0.2
    done
    [ -n "$kl" ] || { echo "no leader ($mode)"; tail -3 "$work"/*.log; exit 2; }
    for c in 1 16 64; do
      t=$(( c < 2 ? 1 : 2 ))
      r=$(PREFIX=/kv/ wrk -t$t -c$c -d"${secs}"s --latency -s "$lua" "$kl" 2>&1)
      rps=$(echo "$r" | awk '/Requests\/sec/ {print $2}')
      p50=$(echo "$r" | awk '$1=="50%" {print $2}')
      p99=$(echo "$r" | awk '$1=="99%" {print $2}')
      bad=$(echo "$r" | awk '/Non-2xx/ {print $NF}')
      st=$(curl -s "$kl/status")
      printf 'rep=%s mode=%-5s clients=%-3s %9s/s p50 %-8s p99 %-8s non2xx=%s leader_syncs=%s\n' \
        "$rep" "$mode" "$c" "$rps" "$p50" "$p99" "${bad:-0}" "$(echo "$st" | sed 's/.*"syncs":\([0-9]*\).*/\1/')"
    done
    stop_cluster
  done
done
