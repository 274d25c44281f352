#!/usr/bin/env bash
# build.sh [BUILDDIR] [extra meson args...] - configure (or reconfigure) and build.
#
# BUILDDIR defaults to "build" at the repository root (a relative BUILDDIR is
# taken relative to the repository root too); warnings are errors (--werror).
# The binary ends up at BUILDDIR/volley.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILDDIR=${1:-build}
if [[ $# -gt 0 ]]; then shift; fi

if [[ -f "$BUILDDIR/meson-private/coredata.dat" ]]; then
  meson setup --reconfigure --werror "$BUILDDIR" "$@"
else
  meson setup --werror "$BUILDDIR" "$@"
fi
ninja -C "$BUILDDIR"
