#!/usr/bin/env bash
# Set up a fresh machine and run every test: the default environment (newest Globus
# packages) and, when its script exists, the foundry-ml environment (globus-sdk 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --test
if [ -f .ci/foundry-env.sh ]; then
  bash .ci/foundry-env.sh
fi
# The default environment holds every extra the tests use: a test skipped for a missing one
# fails (tests/support/require_extras.py). The Foundry environment runs its own tests above.
STEMBENCH_REQUIRE_EXTRAS=1 .venv/bin/python -m pytest -q
