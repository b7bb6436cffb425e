"""Every bad input of the adversarial sweep answers with one message naming what is wrong.

Each case runs the real ``stembench`` entry point and checks the exit status, the message
(the file, field or option, and what was expected) and that no traceback was printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stembench.client.results_lock import ResultsLock

Setup = Callable[[Path, Path], list[str]]


def _image(tmp: Path) -> Path:
    path = tmp / "image.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((32, 32)).astype(np.float32))
    return path


def _csv(tmp: Path, text: str = "x,y\n4,5\n10.5,20\n", encoding: str = "utf-8") -> Path:
    path = tmp / "columns.csv"
    path.write_bytes(text.encode(encoding))
    return path


def _import(tmp: Path, image: Path, csv: Path, *extra: str) -> list[str]:
    out = tmp / "out.h5"
    return ["dataset", "import", str(image), str(csv), "--pixel-size", "0.1",
            "--output", str(out), *extra]


def latin1_csv(tmp: Path, _: Path) -> list[str]:
    return _import(tmp, _image(tmp), _csv(tmp, "x,y,column_type\n4,5,Sé\n", "latin-1"))


def empty_tif(tmp: Path, _: Path) -> list[str]:
    (tmp / "empty.tif").write_bytes(b"")
    return _import(tmp, tmp / "empty.tif", _csv(tmp))


def garbage_tif(tmp: Path, _: Path) -> list[str]:
    (tmp / "garbage.tif").write_bytes(np.random.default_rng(1).bytes(4096))
    return _import(tmp, tmp / "garbage.tif", _csv(tmp))


def output_is_a_folder(tmp: Path, _: Path) -> list[str]:
    (tmp / "folder").mkdir()
    args = _import(tmp, _image(tmp), _csv(tmp), "--overwrite")
    args[args.index("--output") + 1] = str(tmp / "folder")
    return args


def output_exists(tmp: Path, _: Path) -> list[str]:
    (tmp / "out.h5").write_bytes(b"taken")
    return _import(tmp, _image(tmp), _csv(tmp))


def pixel_size(value: str) -> Setup:
    def setup(tmp: Path, _: Path) -> list[str]:
        args = _import(tmp, _image(tmp), _csv(tmp))
        args[args.index("--pixel-size") + 1] = value
        return args
    return setup


def _evaluate(tmp: Path, dataset: Path, *extra: str, results: str = "r.jsonl",
              model: str = "log-blob") -> list[str]:
    return ["evaluate", "--model", model, "--dataset", str(dataset), "--results",
            str(tmp / results), "--workers", "1", "--no-report", *extra]


def results_folder(tmp: Path, dataset: Path) -> list[str]:
    (tmp / "r.jsonl").mkdir()
    return _evaluate(tmp, dataset)


def results_h5(tmp: Path, dataset: Path) -> list[str]:
    return _evaluate(tmp, dataset, results="results.h5")


def results_notes_txt(tmp: Path, dataset: Path) -> list[str]:
    (tmp / "notes.txt").write_text("my notes\n")
    return _evaluate(tmp, dataset, results="notes.txt")


def results_foreign_jsonl(tmp: Path, dataset: Path) -> list[str]:
    (tmp / "r.jsonl").write_text('{"user": "data"}\n')
    return _evaluate(tmp, dataset)


def workers_zero(tmp: Path, dataset: Path) -> list[str]:
    args = _evaluate(tmp, dataset)
    args[args.index("--workers") + 1] = "0"
    return args


def run_workers_zero(tmp: Path, _: Path) -> list[str]:
    return ["run", "--preset", "mini", "--workers", "0", "--out", str(tmp)]


def model_raises_on_import(tmp: Path, dataset: Path) -> list[str]:
    return _evaluate(tmp, dataset, model="stembench_bad_import:locate")


def model_import_blocks(tmp: Path, dataset: Path) -> list[str]:
    import os

    os.environ["STEMBENCH_MODEL_IMPORT_TIMEOUT"] = "2"  # the test's monkeypatch undoes it
    return _evaluate(tmp, dataset, model="stembench_slow_import:locate")


def model_exits_while_built(tmp: Path, dataset: Path) -> list[str]:
    return _evaluate(tmp, dataset, model="stembench_faults:ExitingModel")


def dataset_hdf_suffix(tmp: Path, _: Path) -> list[str]:
    return _evaluate(tmp, Path("x.hdf"))


def dataset_folder(tmp: Path, _: Path) -> list[str]:
    return ["dataset", "info", str(tmp)]


def corrupt_png(tmp: Path, _: Path) -> list[str]:
    (tmp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return ["assess", str(tmp / "broken.png"), "--pixel-size", "0.1", "--out", str(tmp)]


def assess_pixel_size(tmp: Path, _: Path) -> list[str]:
    np.save(tmp / "image.npy", np.random.default_rng(2).random((64, 64)))
    return ["assess", str(tmp / "image.npy"), "--pixel-size", "1e-6", "--out", str(tmp)]


# The sweep of issue 27 (client, run and dataset side): one setup per case.

def _lattice(tmp: Path, name: str = "lattice.tif", rows: int = 96, cols: int = 96) -> Path:
    """A square lattice of Gaussian columns 12 px apart (2.4 A at 0.2 A/px)."""
    y, x = np.mgrid[0:rows, 0:cols].astype(float)
    image = 0.02 * np.random.default_rng(3).random((rows, cols))
    for cy in np.arange(6.0, rows, 12.0):
        for cx in np.arange(6.0, cols, 12.0):
            image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 8.0)
    path = tmp / name
    if path.suffix == ".npy":
        np.save(path, image)
    else:
        tifffile.imwrite(path, image.astype(np.float32))
    return path


def _fake_dm3(tmp: Path) -> Path:
    (tmp / "fake.dm3").write_bytes(b"not a Digital Micrograph file, whatever its name says")
    return tmp / "fake.dm3"


def label_fake_dm3(tmp: Path, _: Path) -> list[str]:
    return ["label", str(_fake_dm3(tmp)), "--pixel-size", "0.2", "--output",
            str(tmp / "l.csv")]


def assess_fake_dm3(tmp: Path, _: Path) -> list[str]:
    return ["assess", str(_fake_dm3(tmp)), "--pixel-size", "0.2", "--out", str(tmp / "a")]


def import_fake_dm3(tmp: Path, _: Path) -> list[str]:
    return _import(tmp, _fake_dm3(tmp), _csv(tmp))


def label_thin_noise(tmp: Path, _: Path) -> list[str]:
    path = tmp / "thin.tif"
    tifffile.imwrite(path, np.random.default_rng(4).random((10, 10000)).astype(np.float32))
    return ["label", str(path), "--pixel-size", "0.2", "--output", str(tmp / "l.csv")]


def label_output_folder(tmp: Path, _: Path) -> list[str]:
    (tmp / "labels").mkdir()
    return ["label", str(_lattice(tmp)), "--pixel-size", "0.2", "--output", str(tmp / "labels")]


def label_huge_spacing(tmp: Path, _: Path) -> list[str]:
    return ["label", str(_lattice(tmp)), "--pixel-size", "0.2", "--min-spacing", "1e6",
            "--output", str(tmp / "l.csv")]


def label_tiny_pixel(tmp: Path, _: Path) -> list[str]:
    return ["label", str(_lattice(tmp)), "--pixel-size", "1e-9", "--output", str(tmp / "l.csv")]


def assess_out_file(tmp: Path, _: Path) -> list[str]:
    (tmp / "taken.txt").write_text("mine\n")
    return ["assess", str(_lattice(tmp)), "--pixel-size", "0.2", "--out", str(tmp / "taken.txt")]


def csv_huge_field(tmp: Path, _: Path) -> list[str]:
    csv = _csv(tmp, "x,y,column_type\n4,5," + "A" * 5_000_000 + "\n")
    return _import(tmp, _image(tmp), csv)


def assess_run_dict_model(tmp: Path, _: Path) -> list[str]:
    return ["assess", str(_lattice(tmp)), "--pixel-size", "0.2", "--out", str(tmp / "a"),
            "--run", "stembench_faults:dict_model", "--no-twin"]


def assess_run_slow_model(tmp: Path, _: Path) -> list[str]:
    return ["assess", str(_lattice(tmp)), "--pixel-size", "0.2", "--out", str(tmp / "a"),
            "--run", "stembench_faults:sleepy_model", "--image-timeout", "0.5", "--no-twin"]


def submit_csv(tmp: Path, _: Path) -> list[str]:
    from importlib import resources

    card = tmp / "card.yaml"
    card.write_bytes(resources.files("stembench.model_cards").joinpath(
        "builtin", "log-blob.yaml").read_bytes())
    rows = "".join(f"{i},{i}\n" for i in range(33))
    return ["submit", str(_csv(tmp, "x,y\n" + rows)), "--model-card", str(card),
            "--service", "http://127.0.0.1:9"]



CASES: list[tuple[str, Setup, int, list[str]]] = [
    ("latin-1 CSV", latin1_csv, 2,
     ["columns.csv: not UTF-8 text (byte 0xe9 at offset", "save the CSV as UTF-8"]),
    ("empty .tif", empty_tif, 2, ["empty.tif: the file is empty (0 bytes); expected a .tif image"]),
    ("garbage TIFF", garbage_tif, 2, ["garbage.tif: not a readable TIFF image"]),
    ("import --output FOLDER --overwrite", output_is_a_folder, 2,
     ["folder is a folder; expected the path of a dataset file to write"]),
    ("import onto an existing file", output_exists, 2,
     ["out.h5 already exists; use --overwrite"]),
    ("pixel size 1e6 A/px", pixel_size("1e6"), 2,
     ["image.tif: pixel size (--pixel-size) 1e+06 A/px is outside the physical range "
      "0.005-5 A/px", "pass --allow-unusual-pixel-size if it is right"]),
    ("pixel size 1e-9 A/px", pixel_size("1e-9"), 2,
     ["pixel size (--pixel-size) 1e-09 A/px is outside the physical range 0.005-5 A/px"]),
    ("--results FOLDER", results_folder, 2,
     ["r.jsonl: is a folder; expected a stembench results file ending in .jsonl"]),
    ("--results x.h5", results_h5, 2,
     ["results.h5: expected a stembench results file ending in .jsonl (JSON lines), got a "
      ".h5 file name"]),
    ("--results notes.txt", results_notes_txt, 2,
     ["notes.txt: expected a stembench results file ending in .jsonl (JSON lines), got a "
      ".txt file name"]),
    ("--results someone else's .jsonl", results_foreign_jsonl, 2,
     ["r.jsonl: exists and is not a stembench results file", "refusing to append to it"]),
    ("evaluate --workers 0", workers_zero, 2,
     ["Invalid value for '--workers': Input should be greater than or equal to 1"]),
    ("run --workers 0", run_workers_zero, 2,
     ["Invalid value for '--workers': Input should be greater than or equal to 1"]),
    ("model module raises on import", model_raises_on_import, 2,
     ["model spec 'stembench_bad_import:locate': importing module 'stembench_bad_import' "
      "raised RuntimeError: this module is broken on purpose"]),
    ("model module whose import blocks", model_import_blocks, 2,
     ["model spec 'stembench_slow_import:locate': importing module 'stembench_slow_import' "
      "took longer than 2 s (STEMBENCH_MODEL_IMPORT_TIMEOUT)"]),
    ("model exits while it is built", model_exits_while_built, 2,
     ["model 'stembench_faults:ExitingModel' failed to load: SystemExit: 3"]),
    ("--dataset x.hdf", dataset_hdf_suffix, 2,
     ["--dataset 'x.hdf': expected a dataset file ending in .h5 or .hdf5, or a preset name "
      "such as 'standard' or 'mini', got a '.hdf' file"]),
    ("dataset info FOLDER", dataset_folder, 2, ["is a folder; expected a dataset file (.h5)"]),
    ("assess on a corrupt PNG", corrupt_png, 2, ["broken.png: not a readable PNG image"]),
    ("assess at 1e-6 A/px", assess_pixel_size, 2,
     ["image.npy: pixel size (--pixel-size) 1e-06 A/px is outside the physical range"]),
    ("label on a file that only claims to be .dm3", label_fake_dm3, 2,
     ["fake.dm3: rosettasciio could not read it as .dm3 (NotImplementedError: ",
      "is it really a .dm3 file?"]),
    ("assess on a file that only claims to be .dm3", assess_fake_dm3, 2,
     ["fake.dm3: rosettasciio could not read it as .dm3 (NotImplementedError: "]),
    ("dataset import of a file that only claims to be .dm3", import_fake_dm3, 2,
     ["fake.dm3: rosettasciio could not read it as .dm3 (NotImplementedError: "]),
    ("label on a 10000x10 noise image", label_thin_noise, 2,
     ["no column found (pixel size 0.2 A/px, minimum spacing 1.8 A): check both"]),
    ("label --output FOLDER", label_output_folder, 2,
     ["labels: is a folder; expected the CSV file to write, e.g. "]),
    ("label --min-spacing 1e6", label_huge_spacing, 2,
     ["minimum column spacing 1e+06 A is 3.75e+06 px at 0.2 A/px, wider than the 96x96 px "
      "image"]),
    ("assess --out FILE", assess_out_file, 2,
     ["taken.txt: is a file; expected the folder to write the assessment to"]),
    ("positions CSV with a 5 MB field", csv_huge_field, 2,
     ["columns.csv: not a readable CSV (field larger than field limit (131072))"]),
    ("assess --run with a model that returns a dict", assess_run_dict_model, 1,
     ["model 'stembench_faults:dict_model' returned dict, expected an (N, 2) array"]),
    ("assess --run with a slow model suggests an option assess has", assess_run_slow_model, 1,
     ["ran past the 0.5 s deadline per image (interrupted; raise it with --image-timeout)"]),
    ("label at 1e-9 A/px", label_tiny_pixel, 2,
     ["lattice.tif: pixel size (--pixel-size) 1e-09 A/px is outside the physical range",
      "pass --allow-unusual-pixel-size if it is right"]),
    ("submit a CSV", submit_csv, 2,
     ["columns.csv: expected a stembench results file ending in .jsonl (JSON lines), got a "
      ".csv file name"]),
]


@pytest.mark.parametrize(("setup", "code", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_message(setup: Setup, code: int, expected: list[str], tmp_path: Path,
                                  tiny_dataset_path: Path, stembench: Callable[..., object],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMBENCH_TOKEN", "not-a-real-token")  # submit stops before using it
    monkeypatch.setenv("STEMBENCH_MODEL_IMPORT_TIMEOUT", "")  # a setup may set it
    answer = stembench(*setup(tmp_path, tiny_dataset_path))
    assert answer.code == code, answer.text  # type: ignore[attr-defined]
    for fragment in expected:
        assert fragment in answer.text, answer.text  # type: ignore[attr-defined]
    assert "Traceback" not in answer.text  # type: ignore[attr-defined]
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written is left behind


def test_unusual_pixel_size_is_accepted_when_asked(tmp_path: Path,
                                                   stembench: Callable[..., object]) -> None:
    args = pixel_size("1e6")(tmp_path, tmp_path)
    answer = stembench(*args, "--allow-unusual-pixel-size")
    assert answer.code == 0, answer.text  # type: ignore[attr-defined]
    assert (tmp_path / "out.h5").is_file()


def test_a_held_results_file_names_its_holder(tmp_path: Path, tiny_dataset_path: Path,
                                              stembench: Callable[..., object]) -> None:
    import os
    import socket

    with ResultsLock(tmp_path / "r.jsonl"):
        answer = stembench(*_evaluate(tmp_path, tiny_dataset_path))
    assert answer.code == 2  # type: ignore[attr-defined]
    assert (f"r.jsonl is being written by process {os.getpid()} on host "
            f"{socket.gethostname()}") in answer.text  # type: ignore[attr-defined]
    assert not (tmp_path / "r.jsonl").exists()  # it stopped before writing anything


def test_missing_extra_error_survives_a_process_boundary() -> None:
    """A worker's MissingExtraError reaches the client intact (not as a broken pool)."""
    import pickle

    from stembench.errors import MissingExtraError

    error = pickle.loads(pickle.dumps(MissingExtraError("torch", "models", "The model 'x'")))
    assert isinstance(error, MissingExtraError) and error.extra == "models"
    assert str(error) == ("The model 'x' needs the optional package 'torch'. Install it with: "
                          "pip install 'stembench[models]'")


def test_a_failed_dataset_write_leaves_no_temporary_file(tmp_path: Path,
                                                         tiny_dataset_path: Path) -> None:
    """A folder that appears at the output path while writing: the write fails, cleanly."""
    from stembench.dataset_publish.storage.stembench_layout import DatasetWriter, open_dataset

    target = tmp_path / "out.h5"
    with open_dataset(tiny_dataset_path) as dataset, pytest.raises(IsADirectoryError), \
            DatasetWriter(target, name="d", version="1", generator_params={},
                          overwrite=True) as writer:
        writer.add(dataset[dataset.ids[0]])
        target.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_label_prints_an_import_command_that_import_accepts(
        suffix: str, tmp_path: Path, stembench: Callable[..., object]) -> None:
    image = _lattice(tmp_path, f"lattice{suffix}")
    answer = stembench("label", str(image), "--pixel-size", "0.2", "--output",
                       str(tmp_path / "lattice_labels.csv"))
    assert answer.code == 0, answer.text  # type: ignore[attr-defined]
    command = answer.stdout.split("after correcting the CSV: ")[1].strip()  # type: ignore[attr-defined]
    assert command.startswith("stembench dataset import ")
    args = command.split()[1:]
    args[args.index("--output") + 1] = str(tmp_path / "labelled.h5")
    imported = stembench(*args)
    assert imported.code == 0, imported.text  # type: ignore[attr-defined]
    assert "Wrote " in imported.text and "0.2 A/px" in imported.text  # type: ignore[attr-defined]


def test_a_file_of_broken_lines_warns_once(tmp_path: Path) -> None:
    from stembench.client.results_file import ResultsFile

    path = tmp_path / "r.jsonl"
    path.write_text("".join(f"{i},{i}\n" for i in range(33)))
    with pytest.warns(UserWarning) as caught:
        assert list(ResultsFile(path).shards()) == []
    assert len(caught) == 1
    assert "33 line(s) incomplete (interrupted write), first line 1" in str(caught[0].message)


def test_a_killed_build_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A build killed (SIGKILL) while it writes: the next load removes what it left, then builds."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import stembench

    folder = tmp_path / "cache"
    builder = subprocess.Popen(
        [sys.executable, "-c", "import stembench, sys; stembench.load(preset='mini', "
         "cache_dir=sys.argv[1])", str(folder)],
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    end = time.monotonic() + 300
    while not list(folder.rglob(".mini.h5.*.tmp")):
        assert builder.poll() is None and time.monotonic() < end, "the build never started"
        time.sleep(0.05)
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    assert list(folder.rglob(".mini.h5.*.tmp"))  # what a killed build leaves
    with stembench.load(preset="mini", cache_dir=folder) as dataset:
        assert len(dataset) > 0
    assert not list(folder.rglob("*.tmp"))
