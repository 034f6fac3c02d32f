#!/usr/bin/env bash
# Install the test dependencies (incl. Debian's chromium and a Java runtime) and run every test.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-make.sh
exec make test "$@"
