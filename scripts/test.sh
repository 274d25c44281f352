#!/usr/bin/env bash
# test.sh - the whole test suite, twice: a normal build ("build", --werror) and
# an ASan/UBSan build ("build-asan", -Dsanitize=true); then a bounded libFuzzer
# run of each fuzz target (scripts/fuzz.sh, clang, "build-fuzz"), one test each.
#
# Installs missing packages first (deps.sh). Prints, as its very last line,
# "N passed, N failed" summed over all three stages (from meson's testlog.json; a
# build that fails counts as one failed test) and exits non-zero if anything
# failed. Works from any directory.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

PASSED=0
FAILED=0

# count_log BUILDDIR - add the results in BUILDDIR/meson-logs/testlog.json.
count_log() {
  local log="$1/meson-logs/testlog.json" counts
  if [[ ! -s "$log" ]]; then
    echo "test.sh: no test log in $1 (meson test did not run)" >&2
    FAILED=$((FAILED + 1))
    return
  fi
  counts=$(/usr/bin/python3 - "$log" <<'PY'
import json, sys
ok = bad = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            ok += 1
        elif r != "SKIP":
            bad += 1
print(ok, bad)
PY
) || { echo "test.sh: cannot read $log" >&2; FAILED=$((FAILED + 1)); return; }
  PASSED=$((PASSED + ${counts% *}))
  FAILED=$((FAILED + ${counts#* }))
}

# run_suite BUILDDIR TIMEOUT_MULTIPLIER [meson args...] - build and test one configuration.
run_suite() {
  local dir="$1" mult="$2"
  shift 2
  echo "=== $dir: build"
  if ! bash scripts/build.sh "$dir" "$@"; then
    echo "test.sh: build in $dir failed" >&2
    FAILED=$((FAILED + 1))
    return
  fi
  echo "=== $dir: meson test"
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult"
  count_log "$dir"
}

# run_fuzz - build the libFuzzer targets (clang, build-fuzz) and fuzz each one
# briefly (scripts/fuzz.sh); each target counts as one test, and a fuzz.sh that
# fails before running any target counts as one failed test.
run_fuzz() {
  local out rc pass fail
  echo "=== build-fuzz: fuzz"
  out=$(mktemp /tmp/volley-test-fuzz.XXXXXX)
  bash scripts/fuzz.sh 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  pass=$(grep -c '^fuzz: PASS ' "$out")
  fail=$(grep -c '^fuzz: FAIL ' "$out")
  rm -f "$out"
  if [[ $rc -ne 0 && $fail -eq 0 ]]; then
    echo "test.sh: fuzz.sh failed (exit $rc) before a target failed" >&2
    fail=1
  fi
  PASSED=$((PASSED + pass))
  FAILED=$((FAILED + fail))
}

if ! bash scripts/deps.sh; then
  echo "test.sh: deps.sh failed" >&2
  FAILED=$((FAILED + 1))
fi

run_suite build 1
run_suite build-asan 2 -Dsanitize=true
run_fuzz

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
