#!/usr/bin/env bash
# deps.sh - install the Debian (bookworm) packages volley needs to build and test.
#
# Idempotent and non-interactive: asks dpkg-query which packages are missing,
# runs apt-get update and apt-get install only when something is missing, and
# preseeds Postfix ("No configuration") so that it installs without a prompt
# and starts no daemon on port 25 (we only need its smtp-sink test server).
# clang and libclang-rt-14-dev (libFuzzer, ASan/UBSan runtimes for clang) are for
# scripts/fuzz.sh. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  gcc meson ninja-build pkg-config
  liburing-dev libssl-dev libldns-dev libjemalloc-dev libcriterion-dev
  postfix python3 python3-aiosmtpd
  openssl time procps
  unbound
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  if [[ "$status" != ii* ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps.sh: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "deps.sh: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi

echo "deps.sh: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [[ " ${missing[*]} " == *" postfix "* ]]; then
  printf '%s\n' \
    'postfix postfix/main_mailer_type select No configuration' \
    'postfix postfix/mailname string localhost' |
    "${SUDO[@]}" debconf-set-selections
fi
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
  --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  [[ "$status" == ii* ]] || still+=("$p")
done
if [[ ${#still[@]} -ne 0 ]]; then
  echo "deps.sh: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "deps.sh: done"
