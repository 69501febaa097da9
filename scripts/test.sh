#!/usr/bin/env bash
# Every test: sets up .venv with the test dependencies (the Phoenix server in .venv-phoenix,
# Debian's prometheus, chromium and postgresql), then runs the whole suite: core, plugins,
# examples, dashboards, benchmarks harness.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
