#!/usr/bin/env bash
# The Foundry environment: stembench with the `foundry` extra (foundry-ml 1.2.2 and mdf-cli 0.3,
# which both need globus-sdk 3; pip then resolves globus-compute-sdk to 4.6 if it is asked for).
# Creates .venv-foundry (no torch, no tensorflow) and runs the tests that touch Foundry/MDF.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
if [ ! -x .venv-foundry/bin/python ]; then
  "$PYTHON" -m venv .venv-foundry
  .venv-foundry/bin/python -m pip install --quiet --upgrade pip
fi
.venv-foundry/bin/python -m pip install --quiet -e '.[foundry,test]'
.venv-foundry/bin/python - <<'PY'
import foundry, globus_sdk, mdf.core.backend_client, respx  # noqa: F401
major = int(globus_sdk.__version__.split(".")[0])
assert major == 3, f"foundry env expected globus-sdk 3.x, got {globus_sdk.__version__}"
print(f"foundry env: globus-sdk {globus_sdk.__version__}")
PY
.venv-foundry/bin/python -m pytest -q -p no:cacheprovider \
  -W "ignore::DeprecationWarning" tests/foundry tests/dataset_storage
