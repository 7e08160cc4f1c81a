#!/usr/bin/env bash
# parallel.sh SCRIPT...: runs the named npm scripts at the same time and fails if any of them
# failed, once all have finished. `npm test` runs the build, the type-check and the lint this way:
# each is single-threaded (tsc twice, ESLint's type-aware rules), so on two cores together they
# take about the longest one's time instead of the sum (about 80 s one after the other here).
set -u
pids=()
for script in "$@"; do
  npm run --silent "$script" &
  pids+=("$!")
done
status=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "parallel.sh: npm run ${*:$((i + 1)):1} failed" >&2
    status=1
  fi
done
exit "$status"
