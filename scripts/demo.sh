#!/usr/bin/env bash
# The main job: sets up .venv, then runs the example agent offline and prints its trace tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/agent.py "$@"
