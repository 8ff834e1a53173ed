#!/usr/bin/env bash
# Runs every test stage (`make test`): each stage is a make target; all stages run even when one
# fails, then a summary with the time of each is printed and the exit code says whether all passed.
# Each stage's output is also kept in build/test-logs/<stage>.log; before the summary come the lines
# of each failed stage's log that say what failed (failed tasks, failed tests, molecule's errors).
# The lab's images (`make images`: the Docker engine, the node and workload images) build in the
# background while the stages that need neither run (lint, sanity, unit); the first stage that
# needs them waits for it, and the summary gives the build's own time.
# Usage: scripts/test.sh [STAGE...]   (default: all stages, in order)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint sanity unit integration lab-tests collection molecule)
logs=build/test-logs
mkdir -p "$logs"
needs_images=" integration lab-tests molecule molecule-v3 bench "

# The lines of a log that name a failure, with the task or test they belong to (a failed task's
# result, when printed over several lines, comes whole).
failure_lines() {
  awk '
    /^(TASK|RUNNING HANDLER) \[/ { task = $0; next }
    block { print; if ($0 ~ /^}/) block = 0; next }
    /^(fatal|failed): / || /^FAILED [^-]/ || /^E   / || /^(ERROR|CRITICAL) / || /  error  / \
      || /^[^ ]+ > [a-z_]+: Executed: Failed/ || /make: \*\*\*/ || /^=== molecule scenario .* FAILED / \
      || /^[^ ]+:[0-9]+:[0-9]+: / || /^[a-z_-]+\[[a-z-]+\]/ || /^  [a-zA-Z0-9_\/.-]+:[0-9]+:/ {
        if (task != "") { print task; task = "" }
        print
        if ($0 ~ /^(fatal|failed): .*=> \{$/) block = 1
    }' "$1" | cut -c1-600 | tail -n 60
}

summary=() failures=()
start_all=$SECONDS

# `make images` in the background when a stage needs the images and an earlier one does not.
images_pid=
for stage in "${stages[@]}"; do
  [[ $needs_images == *" $stage "* ]] || continue
  if [ "$stage" != "${stages[0]}" ]; then
    make --no-print-directory venv >"$logs/venv.log" 2>&1 || { echo "=== venv FAILED"; cat "$logs/venv.log"; }
    ( start=$SECONDS; make --no-print-directory images >"$logs/images.log" 2>&1; rc=$?
      echo "$rc $((SECONDS - start))" >"$logs/images.result" ) &
    images_pid=$!
    echo "=== images (in the background: $logs/images.log)"
  fi
  break
done
wait_images() {
  [ -n "$images_pid" ] || return 0
  wait "$images_pid"; images_pid=
  local rc secs result=passed
  read -r rc secs <"$logs/images.result"
  # a failed build fails the stages that need it (they run `make images` again)
  [ "$rc" -eq 0 ] || result="FAILED (see $logs/images.log)"
  summary+=("$(printf '%-12s %-7s %5ds, beside the stages before it' images "$result" "$secs")")
}

for stage in "${stages[@]}"; do
  [[ $needs_images != *" $stage "* ]] || wait_images
  echo "=== $stage"
  start=$SECONDS
  if make --no-print-directory "$stage" 2>&1 | tee "$logs/$stage.log"; then
    result=passed
  else
    result=FAILED; failures+=("$stage")
  fi
  summary+=("$(printf '%-12s %-7s %5ds' "$stage" "$result" $((SECONDS - start)))")
  # a molecule stage's scenarios, each with its time
  while read -r _ _ _ name res _ secs; do
    summary+=("$(printf '  %-10s %-7s %5s' "$name" "$res" "$secs")")
  done < <(grep -a '^=== molecule scenario ' "$logs/$stage.log")
done

wait_images

for stage in "${failures[@]}"; do
  echo "=== what failed in $stage (full output: $logs/$stage.log)"
  failure_lines "$logs/$stage.log"
done
echo "=== summary (total $((SECONDS - start_all))s)"
printf '%s\n' "${summary[@]}"
echo "stages: $((${#stages[@]} - ${#failures[@]})) passed, ${#failures[@]} failed"
[ ${#failures[@]} -eq 0 ]
