#!/usr/bin/env bash
# Runs every test stage (`make test`): each stage is a make target; all stages run even when one
# fails, then a summary with the time of each is printed and the exit code says whether all passed.
# Usage: scripts/test.sh [STAGE...]   (default: all stages, in order)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint sanity unit integration lab-tests collection molecule molecule-v3)

passed=0 failed=0 summary=()
start_all=$SECONDS
for stage in "${stages[@]}"; do
  echo "=== $stage"
  start=$SECONDS
  if make --no-print-directory "$stage"; then
    passed=$((passed + 1)); result=passed
  else
    failed=$((failed + 1)); result=FAILED
  fi
  summary+=("$(printf '%-12s %-7s %5ds' "$stage" "$result" $((SECONDS - start)))")
done

echo "=== summary (total $((SECONDS - start_all))s)"
printf '%s\n' "${summary[@]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
