#!/usr/bin/env bash
# Set up (virtual environment, dependencies, demo shop) and start the app on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure-make.sh
exec make run "$@"
