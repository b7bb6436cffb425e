#!/usr/bin/env bash
# The foundry-ml environment: stembench with the `foundry` extra (foundry-ml 1.2, which needs
# globus-sdk 3; pip then resolves globus-compute-sdk to 4.6 if it is asked for at all).
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
import globus_sdk, foundry, mdf_connect_client  # noqa: F401
major = int(globus_sdk.__version__.split(".")[0])
assert major == 3, f"foundry env expected globus-sdk 3.x, got {globus_sdk.__version__}"
print(f"foundry env: globus-sdk {globus_sdk.__version__}")
PY
.venv-foundry/bin/python -m pytest -q -p no:cacheprovider \
  -W "ignore::DeprecationWarning" tests/foundry tests/dataset_storage
