#!/usr/bin/env bash
# Runs molecule scenarios (`make molecule`), each on three nodes and a Docker network of its own
# (ETCDFLEET_MOLECULE_NODES, ETCDFLEET_MOLECULE_SUBNET; the default scenario keeps the walkthrough's
# names, core-01..03). A converge keeps the machine's cores busy while the stories after it mostly
# wait on timers, TTLs and the nodes, so each scenario starts when the one before it has converged
# (its idempotence step is done, or it ended): one converge at a time, beside the stories of the
# scenario before. Every scenario runs to its end even when another fails. Each one's output goes
# to build/test-logs/molecule-<scenario>.log and is printed whole once all have ended, each followed
# by "=== molecule scenario <name> passed|FAILED in <seconds>s"; the exit code says whether all
# passed. MOLECULE_SERIAL=1 runs them one after the other instead.
# Usage: scripts/molecule.sh SCENARIO...
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
logs=build/test-logs
mkdir -p "$logs"

run() {
  local scenario=$1 index=$2 start=$SECONDS result=passed nodes=core
  [ "$scenario" = default ] || nodes=$scenario
  ETCDFLEET_MOLECULE_NODES=${ETCDFLEET_MOLECULE_NODES:-$nodes} \
    ETCDFLEET_MOLECULE_SUBNET=${ETCDFLEET_MOLECULE_SUBNET:-172.31.$((9 + index)).0/24} \
    molecule test -s "$scenario" >"$logs/molecule-$scenario.log" 2>&1 || result=FAILED
  echo "$result $((SECONDS - start))" >"$logs/molecule-$scenario.result"
}

# Until the scenario has converged (molecule logs its idempotence step as executed) or ended.
wait_converged() {
  local scenario=$1 pid=$2
  while kill -0 "$pid" 2>/dev/null; do
    grep -aq "$scenario > idempotence.* Executed" "$logs/molecule-$scenario.log" 2>/dev/null && return
    sleep 5
  done
}

index=0 pids=() previous=
for scenario in "$@"; do
  rm -f "$logs/molecule-$scenario.result"
  if [ "${MOLECULE_SERIAL:-}" = 1 ]; then
    run "$scenario" "$index"
  else
    [ -z "$previous" ] || wait_converged "$previous" "${pids[-1]}"
    run "$scenario" "$index" &
    pids+=($!)
    previous=$scenario
  fi
  index=$((index + 1))
done
[ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"

rc=0
for scenario in "$@"; do
  read -r result secs <"$logs/molecule-$scenario.result" || result=FAILED secs=0
  cat "$logs/molecule-$scenario.log"
  echo "=== molecule scenario $scenario $result in ${secs}s"
  [ "$result" = passed ] || rc=1
done
exit $rc
