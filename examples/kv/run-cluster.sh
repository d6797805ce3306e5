#!/usr/bin/env bash
# examples/kv/run-cluster.sh - start a 3-node kv-server cluster on localhost.
#
#   examples/kv/run-cluster.sh [PATH-TO-kv-server]     (default: ./build-kv/examples/kv/kv-server)
#
# Build it first, in a build directory of its own (the tests' tests/run.sh
# uses build/, in Debug):
#   cmake -S . -B build-kv -DCMAKE_BUILD_TYPE=Release -DRAFT_BUILD_TESTS=OFF
#   cmake --build build-kv --target kv-server kv-cli
#
# Raft traffic on ports 7001-7003, clients on 8001-8003 (override with
# KV_RAFT_BASE / KV_HTTP_BASE), data in a fresh temp dir. Ctrl-C stops the
# servers (SIGTERM: graceful) and keeps the data dir for inspection.
set -euo pipefail
server=${1:-${KV_SERVER:-./build-kv/examples/kv/kv-server}}
if [[ ! -x $server ]]; then
  echo "run-cluster.sh: no kv-server at $server; build it first:" >&2
  echo "  cmake -S . -B build-kv -DCMAKE_BUILD_TYPE=Release -DRAFT_BUILD_TESTS=OFF && cmake --build build-kv --target kv-server kv-cli" >&2
  echo "or pass the path of a kv-server" >&2
  exit 2
fi
# Say which binary runs and how it was built: a debug build is several times slower.
if build=$("$server" --build-info 2>/dev/null); then
  echo "run-cluster.sh: $server (${build#kv-server: })"
  case $build in *WITHOUT*) echo "run-cluster.sh: warning: that is an unoptimized debug build" >&2 ;; esac
else
  echo "run-cluster.sh: $server (an older kv-server: cannot tell how it was built)"
fi
raft_base=${KV_RAFT_BASE:-7000}
http_base=${KV_HTTP_BASE:-8000}
data=$(mktemp -d "${TMPDIR:-/tmp}/kv-cluster.XXXXXX")
peers="1=127.0.0.1:$((raft_base + 1)),2=127.0.0.1:$((raft_base + 2)),3=127.0.0.1:$((raft_base + 3))"
clients="1=127.0.0.1:$((http_base + 1)),2=127.0.0.1:$((http_base + 2)),3=127.0.0.1:$((http_base + 3))"
pids=()
for id in 1 2 3; do
  "$server" --id "$id" --peers "$peers" --client-addrs "$clients" --data "$data/n$id" \
    --listen "127.0.0.1:$((http_base + id))" 2>"$data/n$id.log" &
  pids+=($!)
done
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "stopped; data and logs kept in $data"
}
trap stop EXIT INT TERM
cat <<MSG
3 kv-server nodes running (pids ${pids[*]}); data and logs in $data
  curl -L -X PUT --data-binary 'world' http://127.0.0.1:$((http_base + 1))/kv/hello
  curl -L http://127.0.0.1:$((http_base + 2))/kv/hello
  curl -L -X DELETE http://127.0.0.1:$((http_base + 3))/kv/hello
  curl http://127.0.0.1:$((http_base + 1))/status
  kv-cli --servers 127.0.0.1:$((http_base + 1)),127.0.0.1:$((http_base + 2)),127.0.0.1:$((http_base + 3)) put hello world
  tail -f $data/n1.log
Press Ctrl-C to stop.
MSG
wait
