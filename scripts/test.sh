#!/usr/bin/env bash
# Set up a fresh machine and run every test: the default environment (newest Globus
# packages) and, when its script exists, the foundry-ml environment (globus-sdk 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
if [ -f .ci/foundry-env.sh ]; then
  bash .ci/foundry-env.sh
fi
.venv/bin/python -m pytest -q
