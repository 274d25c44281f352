#!/usr/bin/env bash
# fuzz.sh - build the libFuzzer targets with clang ("build-fuzz") and run each
# one for a short, bounded time over a copy of its seed corpus.
#
# Configures build-fuzz with CC=clang -Dfuzz=true -Dintegration=false (or
# reconfigures it; safe to run twice), builds tests/fuzz/fuzz_{smtp,job,dns},
# then runs each for FUZZ_SECONDS seconds (default 15) over a copy of
# tests/fuzz/corpus/NAME in a temporary directory: the checked-in seeds are
# never written to. Prints one line per target:
#
#   fuzz: PASS fuzz_smtp: 186808 runs in 15 s, 20 seeds -> 509 inputs
#   fuzz: FAIL fuzz_job: crash (exit 1), artifact build-fuzz/fuzz-artifacts/fuzz_job/crash-...
#
# and exits non-zero when a target failed or the build did. Crash inputs stay in
# build-fuzz/fuzz-artifacts/TARGET/, each run's log in build-fuzz/fuzz-logs/.
# Other knobs: FUZZ_RSS_MB (-rss_limit_mb, default 2048), FUZZ_TARGETS (a
# subset, e.g. "smtp dns"). See docs/fuzzing.md. Works from any directory.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

BUILD=build-fuzz
SECS=${FUZZ_SECONDS:-15}
RSS_MB=${FUZZ_RSS_MB:-2048}
read -r -a TARGETS <<<"${FUZZ_TARGETS:-smtp job dns}"

if ! [[ "$SECS" =~ ^[1-9][0-9]*$ && "$RSS_MB" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: FUZZ_SECONDS and FUZZ_RSS_MB must be positive integers" >&2
  exit 2
fi

# clang and its libFuzzer runtime come from Debian (clang, libclang-rt-14-dev).
if ! command -v clang >/dev/null 2>&1 ||
   [[ ! -e $(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a") ]]; then
  echo "fuzz.sh: clang or libFuzzer missing; running scripts/deps.sh"
  bash scripts/deps.sh || { echo "fuzz.sh: deps.sh failed" >&2; exit 1; }
fi

# build - configure (or reconfigure) build-fuzz and build the targets; quiet unless it fails.
build() {
  local log rc=0
  log=$(mktemp /tmp/volley-fuzz-build.XXXXXX)
  {
    if [[ -f "$BUILD/meson-private/coredata.dat" ]]; then
      meson setup --reconfigure "$BUILD" -Dfuzz=true -Dintegration=false
    else
      CC=clang meson setup "$BUILD" -Dfuzz=true -Dintegration=false
    fi &&
    ninja -C "$BUILD" "${TARGETS[@]/#/tests/fuzz/fuzz_}"
  } >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: build in $BUILD failed (configured with another compiler? remove $BUILD)" >&2
  fi
  rm -f "$log"
  return $rc
}

echo "fuzz.sh: building $BUILD (clang, -Dfuzz=true)"
if ! build; then
  exit 1
fi

WORK=$(mktemp -d /tmp/volley-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"

FAILED=0
for t in "${TARGETS[@]}"; do
  name=fuzz_$t
  exe=$BUILD/tests/fuzz/$name
  seeds=tests/fuzz/corpus/$t
  corpus=$WORK/$t
  art=$BUILD/fuzz-artifacts/$name
  log=$BUILD/fuzz-logs/$name.log
  mkdir -p "$art"
  cp -r "$seeds" "$corpus"
  nseeds=$(find "$seeds" -type f | wc -l)
  # -timeout: one input taking 10 s is a hang; artifacts go to $art, never to the cwd.
  "$exe" -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$art/" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  ninputs=$(find "$corpus" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    echo "fuzz: PASS $name: ${runs:-?} runs in $SECS s, $nseeds seeds -> $ninputs inputs"
  else
    FAILED=$((FAILED + 1))
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    what=crash
    if grep -q 'ALARM: working on the last Unit' "$log"; then
      what=hang
    elif grep -q 'out-of-memory' "$log"; then
      what="out of memory"
    fi
    echo "fuzz: FAIL $name: $what (exit $rc), artifact ${artifact:-none}, log $log"
    # what went wrong, in a few lines: our invariant message and the sanitizer's summary
    grep -E 'invariant failed|^SUMMARY|ERROR: (AddressSanitizer|libFuzzer)|runtime error' \
      "$log" | head -n 5 | sed 's/^/    /'
  fi
done

[[ $FAILED -eq 0 ]]
