"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and catch what they forbid.

The layers are core <- dataset_publish <- endpoints <- client <- service <- cli (a module may
import only from layers below its own), and no package has an import circle between its
modules or sub-packages. The contracts run on a copy of the package with one forbidden import
added, to show that they fail then.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]


def _lint(source_root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the ``stembench`` package found under ``source_root``."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, "
            "no_cache=True, no_logo=True))")
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run([sys.executable, "-c", code], cwd=source_root, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package's Python files with ``line`` appended to ``module`` (a path)."""
    shutil.copytree(ROOT / "src" / "stembench", tmp_path / "stembench",
                    ignore=lambda folder, names: [n for n in names if not (
                        n.endswith(".py") or (Path(folder) / n).is_dir())])
    target = tmp_path / "stembench" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return tmp_path


def test_the_package_keeps_its_layers_and_has_no_import_circle():
    done = _lint(ROOT / "src")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "named"), [
    ("datamodel.py", "import stembench.client.run", "stembench.datamodel -> stembench.client.run"),
    ("dataset_publish/simulate/series.py", "import stembench.endpoints.shard",
     "stembench.dataset_publish.simulate.series -> stembench.endpoints.shard"),
    ("endpoints/requests.py", "import stembench.client.scheduler",
     "stembench.endpoints.requests -> stembench.client.scheduler"),
    ("client/run.py", "import stembench.service.settings",
     "stembench.client.run -> stembench.service.settings"),
    ("dataset_publish/storage/manifest.py", "import stembench.dataset_publish.mdf.download",
     ".storage -> .mdf"),
], ids=["core-imports-client", "dataset-imports-endpoints", "endpoints-import-client",
        "client-imports-service", "storage-mdf-circle"])
def test_a_forbidden_import_breaks_the_contracts(tmp_path, module, line, named):
    done = _lint(_copy_with(tmp_path, module, line))
    assert done.returncode != 0
    assert named in done.stdout.replace("\n", " ").replace("  ", " "), done.stdout[-4000:]
