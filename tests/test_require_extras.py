"""Under STEMBENCH_REQUIRE_EXTRAS=1 a skip for a missing module fails the run (CI sets it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUPPORT = Path(__file__).parent / "support"

CASES = '''
import pytest

def test_needs_a_missing_extra():
    pytest.importorskip("stembench_no_such_extra")

def test_needs_the_foundry_environment():
    pytest.importorskip("foundry_no_such_module".replace("_no_such_module", ""))

def test_skipped_for_another_reason():
    pytest.skip("no GPU here")
'''
MODULE_LEVEL = 'import pytest\n\npytest.importorskip("stembench_no_such_extra")\n\n' \
               'def test_never_collected():\n    pass\n'


def _run(tmp_path: Path, source: str, required: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_case.py").write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get(
        "PYTHONPATH", "")])}
    env.pop("STEMBENCH_REQUIRE_EXTRAS", None)
    if required:
        env["STEMBENCH_REQUIRE_EXTRAS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "require_extras",
                           "-p", "no:cacheprovider", "test_case.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_missing_extra_fails_only_when_required(tmp_path: Path) -> None:
    relaxed = _run(tmp_path, CASES, required=False)
    assert relaxed.returncode == 0, relaxed.stdout
    assert "3 skipped" in relaxed.stdout
    strict = _run(tmp_path, CASES, required=True)
    assert strict.returncode == 1, strict.stdout
    assert "FAILED test_case.py::test_needs_a_missing_extra" in strict.stdout
    assert "'stembench_no_such_extra' is missing" in strict.stdout
    assert "1 failed, 2 skipped" in strict.stdout  # the Foundry env's module, and a GPU


def test_a_module_skipped_at_import_fails_when_required(tmp_path: Path) -> None:
    relaxed = _run(tmp_path, MODULE_LEVEL, required=False)
    assert relaxed.returncode == 5 and "1 skipped" in relaxed.stdout  # 5: nothing else ran
    strict = _run(tmp_path, MODULE_LEVEL, required=True)
    assert strict.returncode == 2 or strict.returncode == 1, strict.stdout
    assert "'stembench_no_such_extra' is missing" in strict.stdout
