#!/usr/bin/env bash
# Set up (virtual environment, dependencies, demo shop) and start the app on http://127.0.0.1:8501
# (this machine only; LTREC_ADDRESS serves another address once sign-in is configured: README).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-make.sh
exec make run "$@"
