#!/usr/bin/env bash
# kv-server reads, fail-over and term stability, on this machine: a 3-node
# cluster on loopback, fsync on, default (async) durability.
#
#   benchmarks/kv_reads.sh KV_SERVER reads    [seconds per point] [repetitions] [modes]
#   benchmarks/kv_reads.sh KV_SERVER failover [runs]
#   benchmarks/kv_reads.sh KV_SERVER terms    [restarts]
#
# reads:    wrk GETs against the leader (1000 keys of 100-byte values, filled
#           first with wrk PUTs) at 1, 16 and 64 connections, per read mode:
#           log   (--reads log: every GET is a log entry, replicated and fsynced),
#           index (the default: ReadIndex, one heartbeat round per batch of reads),
#           lease (--lease-reads and GET ?lease=1: served at once under the lease).
#           The modes alternate within each repetition. One line per point.
# failover: kill -9 the leader, then time until one of the other two nodes
#           answers a PUT with 200 (curl in a loop, no pause). One line per run.
# terms:    term changes of the cluster per follower event, with PreVote and
#           CheckQuorum on (the default) and off (--no-pre-vote
#           --no-check-quorum): N times kill -9 of a follower + restart, and N
#           times a follower cut off for 2 s by the fault switch
#           (/debug/isolate) and healed. One line per configuration and event.
# Extra kv-server flags can be given in KV_FLAGS. Needs wrk and curl.
set -u
kv=$1; what=$2
work=$(mktemp -d /tmp/kvreads.XXXXXX)
pids=()
stop_cluster() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; pids=(); }
cleanup() { stop_cluster; rm -rf "$work"; }
trap cleanup EXIT INT TERM

peers="1=127.0.0.1:17591,2=127.0.0.1:17592,3=127.0.0.1:17593"
clients="1=127.0.0.1:18591,2=127.0.0.1:18592,3=127.0.0.1:18593"
url() { echo "http://127.0.0.1:1859$1"; }

start_node() {  # id, flags...
  local i=$1; shift
  # shellcheck disable=SC2086
  "$kv" --id "$i" --peers "$peers" --client-addrs "$clients" --data "$work/k$i" --listen "127.0.0.1:1859$i" \
    "$@" ${KV_FLAGS:-} >>"$work/k$i.log" 2>&1 &
  pids[$i]=$!
}
start_cluster() {  # flags...
  rm -rf "$work"/k*
  pids=()
  for i in 1 2 3; do start_node "$i" "$@"; done
}
leader_id() {  # prints the id of the node that says it leads (waits up to 10 s)
  for _ in $(seq 1 100); do
    for i in 1 2 3; do
      curl -s -m 0.5 "$(url "$i")/status" | grep -q '"role":"leader"' && { echo "$i"; return 0; }
    done
    sleep 0.1
  done
  return 1
}
field() { sed -n "s/^{.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1" | tr -d '"'; }
max_term() {
  local m=0 t
  for i in 1 2 3; do
    t=$(field "$(curl -s -m 0.5 "$(url "$i")/status")" term)
    [ -n "$t" ] && [ "$t" -gt "$m" ] && m=$t
  done
  echo "$m"
}

case $what in
reads)
  secs=${3:-5}; reps=${4:-3}; modes=${5:-"log index lease"}
  cat >"$work/put.lua" <<'EOF'
local value = string.rep("v", 100)
local n = 0
request = function() n = n + 1; return wrk.format("PUT", "/kv/k" .. (n % 1000), nil, value) end
EOF
  cat >"$work/get.lua" <<'EOF'
local suffix = os.getenv("SUFFIX") or ""
local n = 0
request = function() n = n + 1; return wrk.format("GET", "/kv/k" .. (n % 1000) .. suffix) end
EOF
  for rep in $(seq 1 "$reps"); do
    for mode in $modes; do
      case $mode in
        log) flags=(--reads log); suffix="" ;;
        index) flags=(--reads index); suffix="" ;;
        lease) flags=(--reads index --lease-reads); suffix="?lease=1" ;;
      esac
      start_cluster "${flags[@]}"
      l=$(leader_id) || { echo "no leader ($mode)"; tail -3 "$work"/*.log; exit 2; }
      kl=$(url "$l")
      wrk -t2 -c16 -d2s -s "$work/put.lua" "$kl" >/dev/null 2>&1  # fill the keys
      for c in 1 16 64; do
        t=$(( c < 2 ? 1 : 2 ))
        s0=$(curl -s "$kl/status")
        r=$(SUFFIX=$suffix wrk -t$t -c$c -d"${secs}"s --latency -s "$work/get.lua" "$kl" 2>&1)
        s1=$(curl -s "$kl/status")
        rps=$(echo "$r" | awk '/Requests\/sec/ {print $2}')
        p50=$(echo "$r" | awk '$1=="50%" {print $2}')
        p99=$(echo "$r" | awk '$1=="99%" {print $2}')
        bad=$(echo "$r" | awk '/Non-2xx/ {print $NF}')
        printf 'rep=%s mode=%-5s clients=%-3s %9s/s p50 %-8s p99 %-8s non2xx=%s leader_syncs=%s log_entries+=%s\n' \
          "$rep" "$mode" "$c" "$rps" "$p50" "$p99" "${bad:-0}" \
          "$(( $(field "$s1" syncs) - $(field "$s0" syncs) ))" "$(( $(field "$s1" last_index) - $(field "$s0" last_index) ))"
      done
      stop_cluster
    done
  done
  ;;
failover)
  runs=${3:-5}
  for run in $(seq 1 "$runs"); do
    start_cluster
    l=$(leader_id) || { echo "no leader"; exit 2; }
    sleep 1  # settled: every node heard from the leader
    others=(); for i in 1 2 3; do [ "$i" != "$l" ] && others+=("$i"); done
    t0=$(date +%s%N)
    kill -9 "${pids[$l]}"
    ok=""
    while [ -z "$ok" ]; do
      for i in "${others[@]}"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -m 1 -X PUT --data-binary x "$(url "$i")/kv/failover")
        [ "$code" = 200 ] && { ok=$i; break; }
      done
      [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 10000 ] && { ok=none; break; }
    done
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    printf 'run=%s killed leader %s; node %s answered a PUT after %s ms (term now %s)\n' "$run" "$l" "$ok" "$ms" "$(max_term)"
    stop_cluster
  done
  ;;
terms)
  n=${3:-5}
  for conf in after before; do
    if [ "$conf" = before ]; then flags=(--debug --no-pre-vote --no-check-quorum); else flags=(--debug); fi
    start_cluster "${flags[@]}"
    l=$(leader_id) || { echo "no leader"; exit 2; }
    sleep 1
    t0=$(max_term)
    for k in $(seq 1 "$n"); do
      f=$(( (l + k % 2) % 3 + 1 ))
      kill -9 "${pids[$f]}"; wait "${pids[$f]}" 2>/dev/null
      sleep 0.1
      start_node "$f" "${flags[@]}"
      sleep 1.5
      l=$(leader_id) || { echo "no leader"; exit 2; }
    done
    t1=$(max_term)
    printf 'config=%-6s (%s) follower kill -9 + restart x%s: term %s -> %s: %s term changes per restart\n' \
      "$conf" "${flags[*]}" "$n" "$t0" "$t1" "$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}')"
    t0=$t1
    for k in $(seq 1 "$n"); do
      f=$(( (l + k % 2) % 3 + 1 ))
      curl -s -X POST "$(url "$f")/debug/isolate?on=1" >/dev/null
      sleep 2
      curl -s -X POST "$(url "$f")/debug/isolate?on=0" >/dev/null
      sleep 1.5
      l=$(leader_id) || { echo "no leader"; exit 2; }
    done
    t1=$(max_term)
    printf 'config=%-6s (%s) follower isolated 2 s + healed x%s: term %s -> %s: %s term changes per event\n' \
      "$conf" "${flags[*]}" "$n" "$t0" "$t1" "$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}')"
    stop_cluster
  done
  ;;
*) echo "usage: $0 KV_SERVER reads|failover|terms [...]"; exit 2 ;;
esac
