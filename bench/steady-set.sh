#!/usr/bin/env bash
# steady-set.sh: pipelined SETs in steady state, Cairn (`--sync never`) beside Redis without
# persistence and the Node floor (bench/floor-server.mjs), each a fresh server:
# for a keyspace of 100 keys (everything in the CPU's caches) and of 100,000 keys (the issue's),
# a warm-up of 300,000 SETs, then 600,000 measured: requests/s and the server's CPU per SET
# (from /proc). Separates the per-command code cost (100 keys) from the memory-bound cost of a
# large keyspace (the difference), and from the warm-up a 100,000-request round includes.
#
#   npm run build && bash bench/steady-set.sh [PORT_BASE]   (default 17720; uses 3 ports)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-17720}
ticks=$(getconf CLK_TCK)
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT

run() { # name port command...
  local name=$1 port=$2
  shift 2
  rm -rf "${data:?}/$name" && mkdir -p "$data/$name"
  "$@" >"$data/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  for keys in 100 100000; do
    redis-benchmark -p "$port" -t set -n 300000 -r "$keys" -d 100 -c 50 -P 16 -q >/dev/null 2>&1
    local c0 c1 rps
    c0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    rps=$(redis-benchmark -p "$port" -t set -n 600000 -r "$keys" -d 100 -c 50 -P 16 -q 2>&1 |
      tr '\r' '\n' | grep -o 'SET: [0-9.]* requests per second' | tail -1 | cut -d' ' -f2)
    c1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    printf '%-6s %6s keys: %9.0f SET/s, %5.2f us server CPU per SET\n' "$name" "$keys" "$rps" \
      "$(echo "($c1 - $c0) * 1000000 / $ticks / 600000" | bc -l)"
  done
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
}

run cairn "$base" node dist/src/cli/cairn.js serve --addr "127.0.0.1:$base" --http off --sync never \
  --log-level warn --dir "$data/cairn"
run redis $((base + 1)) redis-server --bind 127.0.0.1 --port $((base + 1)) --save "" --appendonly no \
  --dir "$data/redis"
run floor $((base + 2)) node bench/floor-server.mjs --port $((base + 2)) --dir "$data/floor" --sync never
