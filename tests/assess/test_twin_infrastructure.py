"""The twins' file where every worker of the user reads it, and a failed run never a verdict.

The models run for real (log-blob, in threads or the command's own workers); the only stand-in
is a worker that cannot read the twins' file, made by deleting it right after the real render
(as a node-local or per-job folder, or another user's 0700 folder, looks to the other workers).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from stembench._version import __version__
from stembench.client.assess.twin import command, score
from stembench.client.assess.twin.score import ModelChoice, score_on_twins
from stembench.client.orchestrate import Target
from stembench.dataset_publish.simulate.twin import (
    TwinModel,
    TwinVariant,
    plan_to_json,
    render_twin,
)
from stembench.dataset_publish.simulate.twin_plan import twin_plan
from stembench.dataset_publish.storage.stembench_layout import open_dataset
from stembench.endpoints.twin_task import (
    TWIN_DIR_ENV,
    build_twin_dataset,
    remove_twin_dataset,
)
from stembench.errors import InputError


def _model() -> TwinModel:
    grid = np.arange(4.0, 127.0, 10.0)
    xx, yy = np.meshgrid(grid, grid)
    xy = np.column_stack([xx.ravel(), yy.ravel()])
    return TwinModel((128, 128), 0.2, xy, np.ones(len(xy)), np.full(len(xy), 1.8),
                     np.full((3, 3), 0.1), 0.002, 1e-4, name="square")


def _score(tmp_path: Path, specs: list[str]) -> score.TwinScores:
    """The models scored on one twin of the square lattice, in threads."""
    model = _model()
    with cf.ThreadPoolExecutor(2) as pool:
        return score_on_twins(model, twin_plan(model, n_twins=1, series=False),
                              [ModelChoice(spec) for spec in specs],
                              targets=[Target("threads", pool, max_in_flight=2)],
                              results_dir=tmp_path / "results")


@pytest.fixture
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``~/.cache/stembench`` of a user whose home is in ``tmp_path``; TMPDIR elsewhere (a
    per-job folder), STEMBENCH_CACHE elsewhere (an administrator's shared dataset cache), no
    twin variable."""
    monkeypatch.delenv(TWIN_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "shared-dataset-cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "job-tmp"))
    (tmp_path / "job-tmp").mkdir()
    return tmp_path / "home" / ".cache" / "stembench"


def test_twins_go_to_the_users_home_cache_readable_by_the_owner_only(user_cache: Path) -> None:
    model = _model()
    old = os.umask(0o022)  # a plain user's umask: the folder must still be the owner's only
    try:
        built = build_twin_dataset(model.to_dict(), plan_to_json(twin_plan(model, n_twins=1,
                                                                           series=False)),
                                   __version__)
    finally:
        os.umask(old)
    path = Path(built["path"])
    assert path.parent == user_cache / "twins" and path.is_file()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_twin_folder_that_cannot_be_written_is_one_line_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stembench.errors import DatasetError

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(TWIN_DIR_ENV, str(tmp_path / "a-file" / "twins"))
    model = _model()
    with pytest.raises(DatasetError) as caught:
        build_twin_dataset(model.to_dict(), plan_to_json(twin_plan(model, n_twins=1,
                                                                   series=False)), __version__)
    line = str(caught.value)
    assert line.startswith(f"cannot write the twins to {tmp_path / 'a-file' / 'twins'} on worker")
    assert TWIN_DIR_ENV in line and "\n" not in line


def test_remove_deletes_a_twin_file_and_nothing_else(user_cache: Path, tmp_path: Path) -> None:
    model = _model()
    built = build_twin_dataset(model.to_dict(), plan_to_json(twin_plan(model, n_twins=1,
                                                                       series=False)),
                               __version__)
    other = tmp_path / "twin-0123456789abcdef01234567-0123456789ab.h5"  # outside the folder
    other.write_bytes(b"keep")
    with pytest.raises(InputError, match="not a twin file"):
        remove_twin_dataset(str(other), __version__)
    assert other.read_bytes() == b"keep"
    assert remove_twin_dataset(built["path"], __version__) is True
    assert not Path(built["path"]).exists()


def test_two_assessments_of_one_image_never_delete_each_others_twins(user_cache: Path) -> None:
    """Each render has its own file (one twin set): the first assess to end deletes its own."""
    model = _model()
    plan = plan_to_json(twin_plan(model, n_twins=1, series=False))
    first = build_twin_dataset(model.to_dict(), plan, __version__)
    second = build_twin_dataset(model.to_dict(), plan, __version__)
    assert first["twin_set"] == second["twin_set"] and first["path"] != second["path"]
    assert remove_twin_dataset(first["path"], __version__) is True
    with open_dataset(second["path"]) as dataset:  # the other assess still reads its twins
        assert [image.image_id for image in dataset] == second["image_ids"]


def test_scoring_deletes_the_twins_file_once_the_scores_are_back(user_cache: Path,
                                                                 tmp_path: Path) -> None:
    scores = _score(tmp_path, ["log-blob"])
    assert scores.records["log-blob"] and scores.kept == ""
    assert not Path(scores.dataset_path).exists()


def _unreadable_render(*args: Any) -> dict[str, Any]:
    """The real render, then its file out of this worker's reach."""
    built = build_twin_dataset(*args)
    Path(built["path"]).unlink()
    return built


def test_a_worker_without_the_twins_file_says_where_and_the_model_is_not_scored(
        user_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One line naming the folder and the variable; the model listed as not scored."""
    from stembench.client.assess.twin.predict import not_scored

    monkeypatch.setattr(score, "build_twin_dataset", _unreadable_render)
    scores = _score(tmp_path, ["log-blob"])
    reason = not_scored(scores.records, scores.failed_shards, scores.errors)["log-blob"]
    assert "not readable on worker" in reason and TWIN_DIR_ENV in reason
    assert str(user_cache / "twins") in reason and "\n" not in reason


def test_assess_with_no_model_scored_fails_with_one_line_not_a_verdict(
        user_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the command: listed as not scored in terminal, JSON and HTML; exit 2."""
    from stembench.client.assess.cli import assess_command
    from stembench.client.assess.twin.predict import NONE_RELIABLE

    monkeypatch.setattr(score, "build_twin_dataset", _unreadable_render)
    monkeypatch.setattr(command, "default_models", lambda: (["log-blob"], []))
    pool = cf.ThreadPoolExecutor(2)  # the command's workers, in threads (stopped by it)
    monkeypatch.setattr("stembench.client.lanes.local_lanes", lambda specs, workers: (
        [Target("threads", pool, max_in_flight=2)], dict.fromkeys(specs, 0)))
    image = tmp_path / "square.npy"
    np.save(image, render_twin(_model(), TwinVariant("real", "reference", 0, 7)).image)
    app = typer.Typer()
    app.command()(assess_command)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [str(image), "--pixel-size", "0.2", "--out", str(out),
                                      "--twins", "1"])
    assert result.exit_code == 2, result.output
    assert NONE_RELIABLE not in result.output
    assert "log-blob" in result.output and "not scored: twin file" in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("stembench: error")]
    assert len(errors) == 1 and "no model could be scored" in errors[0]
    twin = json.loads((out / "square_assess.json").read_text())["twin"]
    assert twin["predictions"] == [] and twin["recommended"] is None
    assert TWIN_DIR_ENV in twin["not_scored"]["log-blob"]
    assert "not scored: twin file" in (out / "square_assess.html").read_text()


def test_a_model_that_cannot_load_where_it_runs_is_not_scored_and_the_others_are(
        user_cache: Path, tmp_path: Path) -> None:
    """A published model chosen from this machine's cache, absent where the models run."""
    scores = _score(tmp_path, ["log-blob", "atomnet-cubic-published"])
    from stembench.client.assess.twin.predict import not_scored, predict

    assert [p.model for p in predict(scores.records, twin_values={})] == ["log-blob"]
    (reason,) = not_scored(scores.records, scores.failed_shards, scores.errors).values()
    assert "atomnet-cubic-published is not in the weights cache of host" in reason
    assert "stembench models fetch atomnet-cubic-published" in reason


def test_every_twin_failed_is_not_scored_with_the_first_error() -> None:
    from stembench.client.assess.twin.predict import not_scored, predict

    ok = {"series": "reference", "recall": 1.0, "precision": 1.0, "f1": 1.0,
          "rms_angstrom": 0.05, "failed": False}
    bad = {**ok, "recall": 0.0, "precision": None, "f1": 0.0, "failed": True,
           "error": "image 't0': model raised\nCUDA out of memory"}
    records = {"works": [ok, ok], "partly": [ok, bad], "broken": [bad, bad]}
    ranked = predict(records, twin_values={})
    assert sorted(p.model for p in ranked) == ["partly", "works"]
    assert next(p for p in ranked if p.model == "partly").first_error == (
        "image 't0': model raised CUDA out of memory")
    assert not_scored(records, {"broken": {}}) == {
        "broken": "image 't0': model raised CUDA out of memory"}
    assert not_scored({"lost": []}, {"lost": {"s0": "endpoint went offline"}}) == {
        "lost": "endpoint went offline"}


def test_an_endpoint_gone_during_the_render_ends_the_wait_with_its_reason(
        user_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render never answers (held); the target says it went offline: one line, no wait
    for the task deadline (which would end it with "no answer" instead)."""
    import threading

    from stembench.errors import StembenchError

    hold = threading.Event()
    monkeypatch.setattr(score, "build_twin_dataset", lambda *args: hold.wait())
    gone = "Globus Compute endpoint E went offline mid-run; restart it"
    model = _model()
    with cf.ThreadPoolExecutor(1) as pool:
        try:
            with pytest.raises(StembenchError) as caught:
                score_on_twins(model, twin_plan(model, n_twins=1, series=False),
                               [ModelChoice("log-blob")],
                               targets=[Target("E", pool, max_in_flight=1, gone=lambda: gone)],
                               results_dir=tmp_path / "results", task_deadline_s=30.0)
        finally:
            hold.set()
    assert str(caught.value) == gone


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="runs the render as two other accounts (needs root)")
def test_two_users_on_one_host_with_umask_077_each_render_into_their_own_folder() -> None:
    """A multi-user endpoint starts each user endpoint with umask 0o077 (GCE 4.19): the first
    user's folder in a shared /tmp would lock every other user out (EACCES). The real render
    runs as ``nobody`` and as ``daemon``, each with its home, both with the same TMPDIR."""
    import shutil
    import subprocess
    import sys
    import tempfile

    from other_accounts import let_others_run_this_python

    let_others_run_this_python()  # pyenv's interpreter under /root, say
    shared = Path(tempfile.mkdtemp(prefix="stembench-twin-users-"))  # reachable by others
    try:
        shared.chmod(0o755)
        (shared / "tmp").mkdir(mode=0o1777)
        (shared / "tmp").chmod(0o1777)  # like /tmp: everyone writes, sticky
        model = _model()
        request = shared / "request.json"
        request.write_text(json.dumps([model.to_dict(), plan_to_json(
            twin_plan(model, n_twins=1, series=False)), __version__]))
        request.chmod(0o644)
        script = ("import json, sys; from stembench.endpoints.twin_task import "
                  "build_twin_dataset; print(build_twin_dataset(*json.load(open(sys.argv[1])))"
                  "['path'])")
        src = str(Path(__file__).resolve().parents[2] / "src")
        folders = []
        for uid in (65534, 1):  # nobody, daemon
            home = shared / f"home-{uid}"
            home.mkdir()
            os.chown(home, uid, uid)
            done = subprocess.run(
                [sys.executable, "-c", script, str(request)], user=uid, group=uid,
                extra_groups=[], umask=0o077, capture_output=True, text=True, check=False,
                env={"HOME": str(home), "TMPDIR": str(shared / "tmp"), "PYTHONPATH": src,
                     "PATH": os.environ.get("PATH", "")}, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            folders.append(Path(done.stdout.strip()).parent)
        assert folders == [shared / f"home-{uid}" / ".cache" / "stembench" / "twins"
                           for uid in (65534, 1)]
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o700 and f.stat().st_uid == uid
                   for f, uid in zip(folders, (65534, 1), strict=True))
    finally:
        shutil.rmtree(shared, ignore_errors=True)
