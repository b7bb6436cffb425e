"""stembench.load and the cache: build on first use, reuse, refuse damaged files."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

import stembench
from stembench.dataset_publish.storage import cache
from stembench.dataset_publish.storage.manifest import manifest_sidecar_path
from stembench.errors import DatasetError, IntegrityError

BUILDER = "stembench.dataset_publish.build"


@pytest.fixture
def fake_builder(monkeypatch, image_factory, write_images):
    """Replace the real generator with one that writes two tiny images and counts calls."""
    calls: list[tuple[Path, str]] = []

    def build_dataset(path, *, preset):
        calls.append((Path(path), preset))
        images = [image_factory(f"{preset}-{k}", seed=k) for k in range(2)]
        with cache_writer(path) as writer:
            for image in images:
                writer.add(image)
        return Path(path)

    def cache_writer(path):
        from stembench.dataset_publish.storage.stembench_layout import DatasetWriter

        return DatasetWriter(path, name="atom-locating-benchmark", version="0.0.test",
                             generator_params={"fake": True})

    module = types.ModuleType(BUILDER)
    module.DATASET_VERSION = "0.0.test"
    module.build_dataset = build_dataset
    monkeypatch.setitem(sys.modules, BUILDER, module)
    return calls


def test_load_builds_on_first_use_and_reuses(tmp_path, fake_builder):
    first = stembench.load(preset="tiny", cache_dir=tmp_path)
    expected = tmp_path / "atom-locating-benchmark" / "0.0.test" / "tiny.h5"
    assert fake_builder == [(expected, "tiny")]
    assert first.path == expected and first.ids == ["tiny-0", "tiny-1"]
    image = first["tiny-1"]
    first.close()
    assert manifest_sidecar_path(expected).is_file()
    with stembench.load(preset="tiny", cache_dir=tmp_path) as second:
        assert len(fake_builder) == 1  # reused, not rebuilt
        np.testing.assert_array_equal(second["tiny-1"].image, image.image)
    stembench.load(preset="tiny", cache_dir=tmp_path, rebuild=True).close()
    assert len(fake_builder) == 2


def test_cache_dir_as_a_string(tmp_path, fake_builder):
    """A cache folder given as a string (or with ``~``) is a folder like a Path."""
    with stembench.load(preset="tiny", cache_dir=str(tmp_path)) as dataset:
        assert dataset.path == tmp_path / "atom-locating-benchmark" / "0.0.test" / "tiny.h5"
    with stembench.load(preset="tiny", cache_dir=str(tmp_path)) as again:  # verified record
        assert len(fake_builder) == 1 and again.ids == ["tiny-0", "tiny-1"]


def test_cache_dir_from_environment(tmp_path, monkeypatch, fake_builder):
    monkeypatch.setenv("STEMBENCH_CACHE", str(tmp_path / "env-cache"))
    assert cache.default_cache_dir() == tmp_path / "env-cache"
    stembench.load(preset="tiny").close()
    assert fake_builder[0][0] == tmp_path / "env-cache/atom-locating-benchmark/0.0.test/tiny.h5"
    monkeypatch.delenv("STEMBENCH_CACHE")
    assert cache.default_cache_dir() == Path.home() / ".cache" / "stembench"


def test_tampered_cache_refused_then_rebuilt(tmp_path, fake_builder):
    stembench.load(preset="tiny", cache_dir=tmp_path).close()
    path = fake_builder[0][0]
    with h5py.File(path, "r+") as f:
        f["coords/tiny-0"][0, 0] += 0.5
    with pytest.raises(IntegrityError, match=r"/coords/tiny-0.*rebuild=True") as info:
        stembench.load(preset="tiny", cache_dir=tmp_path)
    assert str(path) in str(info.value)
    assert len(fake_builder) == 1  # never silently rebuilt or used
    with stembench.load(preset="tiny", cache_dir=tmp_path, rebuild=True) as ds:
        assert len(fake_builder) == 2
        ds["tiny-0"]  # verifies cleanly after the rebuild


def test_truncated_cache_refused(tmp_path, fake_builder):
    stembench.load(preset="tiny", cache_dir=tmp_path).close()
    path = fake_builder[0][0]
    data = path.read_bytes()
    for keep in (len(data) - 4096, len(data) // 3):
        path.write_bytes(data[:keep])
        advice = r"unreadable or truncated.*rebuild=True\) or delete"
        with pytest.raises(IntegrityError, match=advice):
            stembench.load(preset="tiny", cache_dir=tmp_path)
    assert len(fake_builder) == 1


def test_unknown_name_lists_known(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown dataset 'atoms'.*atom-locating-benchmark"):
        stembench.load("atoms", cache_dir=tmp_path)


def test_path_is_opened_directly(small_dataset):
    with stembench.load(str(small_dataset)) as ds:
        assert ds.name == "test-set" and len(ds) == 3


def test_uncached_other_version_is_an_error(tmp_path, fake_builder):
    with pytest.raises(DatasetError, match=r"version '0.0.old'.*builds version '0.0.test'"):
        stembench.load(preset="tiny", version="0.0.old", cache_dir=tmp_path)
    assert fake_builder == []


def test_registered_source_fills_cache_before_building(tmp_path, fake_builder, monkeypatch,
                                                       image_factory):
    from stembench.dataset_publish.storage.stembench_layout import DatasetWriter

    requests: list[cache.CacheRequest] = []

    def source(request: cache.CacheRequest) -> bool:
        requests.append(request)
        if request.preset != "remote":
            return False
        assert request.path.parent.is_dir()  # the cache made the entry's folder (its lock)
        with DatasetWriter(request.path, name=request.name, version=request.version,
                           generator_params={"from": "source"}) as writer:
            writer.add(image_factory("fetched"))
        return True

    monkeypatch.setattr(cache, "_SOURCES", [])
    cache.register_source(source)
    assert cache.registered_sources() == (source,)
    with stembench.load(preset="remote", version="0.0.old", cache_dir=tmp_path) as ds:
        assert ds.ids == ["fetched"]
        assert ds.manifest.generator_params == {"from": "source"}
    assert fake_builder == []  # the source was enough
    stembench.load(preset="tiny", cache_dir=tmp_path).close()
    assert [r.preset for r in requests] == ["remote", "tiny"]
    assert len(fake_builder) == 1  # the source declined, so the builder ran
    cache.unregister_source(source)
    assert source not in cache.registered_sources()


def test_cached_file_of_wrong_name_refused(tmp_path, fake_builder, image_factory, write_images):
    path = cache.cache_path("atom-locating-benchmark", preset="tiny", version="0.0.test",
                            cache_dir=tmp_path)
    path.parent.mkdir(parents=True)
    write_images(path, [image_factory("x")])  # name "test-set", version "9.9"
    with pytest.raises(IntegrityError, match=r"holds 'test-set' version '9\.9'"):
        stembench.load(preset="tiny", cache_dir=tmp_path)


def test_bad_preset_name(tmp_path):
    with pytest.raises(Exception, match="plain non-empty name"):
        cache.cache_path("atom-locating-benchmark", preset="../x", version="1", cache_dir=tmp_path)


def test_import_stembench_is_light():
    code = (
        "import sys, stembench; "
        "heavy = [m for m in ('h5py', 'scipy', 'torch', 'stembench.dataset_publish.storage.cache') "
        "if m in sys.modules]; "
        "assert not heavy, heavy; "
        "from stembench.dataset_publish.loading import load; "
        "assert stembench.load is load; print(stembench.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == stembench.__version__


@pytest.mark.slow
def test_load_real_builder_mini(tmp_path):
    from stembench.dataset_publish.simulate import build

    with stembench.load(preset="mini", cache_dir=tmp_path) as ds:
        assert (ds.name, ds.version) == ("atom-locating-benchmark", build.DATASET_VERSION)
        assert ds.manifest.generator_version == build.GENERATOR_VERSION
        assert len(ds) > 0
        first = ds[ds.ids[0]]
        assert first.coords.shape[1] == 2 and first.pixel_size > 0
        path = ds.path
    stamp = path.stat().st_mtime_ns
    with stembench.load(preset="mini", cache_dir=tmp_path) as again:
        assert again.ids == ds.ids
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
