#!/usr/bin/env bash
# System packages the test suite drives: Debian's chromium (the browser tests; Playwright
# downloads no browser) and wrk (the HTTP benchmarks' load generator). Installed with apt-get when
# missing and running as root; otherwise says what to install.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
else
  echo "missing system packages: ${missing[*]} (Debian: sudo apt-get install ${missing[*]});" \
       "the browser and wrk tests need them" >&2
fi
