"""The shared training-data generator: shapes, labels under the mask peaks, seed range."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from stembench.endpoints.training.data import (
    TRAINING_SEED_MIN,
    make_training_batch,
    make_training_sample,
)
from stembench.endpoints.training.world import (
    CUBIC_STRUCTURES,
    HEXAGONAL_STRUCTURES,
    structures_for,
)
from stembench.errors import InputError


@pytest.mark.parametrize("kind", ["mixed", "cubic", "hexagonal"])
def test_batch_shapes_dtypes_and_ranges(kind: str) -> None:
    images, masks = make_training_batch(kind, n=3, size=40, rng=np.random.default_rng(1),
                                        mask="gaussian")
    assert images.shape == masks.shape == (3, 40, 40)
    assert images.dtype == masks.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert np.allclose(images.reshape(3, -1).max(axis=1), 1)
    assert masks.min() >= 0 and masks.max() <= 1


def test_kinds_draw_from_their_lattices() -> None:
    assert structures_for("hexagonal") == ("graphene",)  # the published recipe
    assert "BaSnO3[100]" in structures_for("cubic")
    assert set(CUBIC_STRUCTURES) | set(HEXAGONAL_STRUCTURES) <= set(structures_for("mixed"))
    assert len(structures_for("mixed")) > len(CUBIC_STRUCTURES) + len(HEXAGONAL_STRUCTURES)
    with pytest.raises(InputError, match="kind"):
        structures_for("triclinic")  # type: ignore[arg-type]


@pytest.mark.parametrize("mask", ["gaussian", "disc"])
def test_mask_peaks_sit_on_the_labels(mask: str) -> None:
    names = structures_for("hexagonal")
    replay = np.random.default_rng(11)
    name = names[int(replay.integers(len(names)))]
    sample = make_training_sample(name, size=48, rng=replay)
    images, masks = make_training_batch("hexagonal", n=1, size=48,
                                        rng=np.random.default_rng(11), mask=mask)
    np.testing.assert_array_equal(images[0], sample.image)
    labels = sample.labels_xy
    assert len(labels) >= 3
    nearest = np.rint(labels).astype(int)
    values = masks[0][nearest[:, 1], nearest[:, 0]]
    assert values.min() >= (0.77 if mask == "gaussian" else 1.0)
    if mask == "gaussian":
        peaks = (masks[0] == ndimage.maximum_filter(masks[0], size=3)) & (masks[0] > 0.9)
        rows, cols = np.nonzero(peaks)
        dist = np.hypot(cols[:, None] - labels[None, :, 0], rows[:, None] - labels[None, :, 1])
        assert dist.min(axis=1).max() <= 0.75
    else:
        assert masks[0].sum() > 0 and set(np.unique(masks[0])) <= {0.0, 1.0}


def test_training_seeds_stay_above_the_benchmark_range() -> None:
    rng = np.random.default_rng(0)
    seeds = [make_training_sample("BaZrO3[100]", size=24, rng=rng).seed for _ in range(5)]
    assert min(seeds) >= TRAINING_SEED_MIN == 1_000_000
    assert len(set(seeds)) == 5


def test_conditions_vary_between_samples() -> None:
    rng = np.random.default_rng(4)
    samples = [make_training_sample("MoSe2", size=32, rng=rng) for _ in range(6)]
    pixel_sizes = {round(s.pixel_size_angstrom, 4) for s in samples}
    assert len(pixel_sizes) == 6
    # pixel size follows 3-22 atoms per 100 px of the 1.90 A MoSe2 column spacing
    assert all(0.04 <= s.pixel_size_angstrom <= 0.22 * 1.90 for s in samples)


def test_bad_requests_raise_input_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="mask"):
        make_training_batch("mixed", n=1, size=32, rng=rng, mask="square")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n >= 1"):
        make_training_batch("mixed", n=0, size=32, rng=rng, mask="disc")
    with pytest.raises(InputError, match="mask_width_angstrom"):
        make_training_batch("mixed", n=1, size=32, rng=rng, mask="disc", mask_width_angstrom=0)
