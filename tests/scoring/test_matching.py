"""Tests of the one-to-one matching against hand-computed cases and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from stembench.errors import InputError
from stembench.matching import match_positions, pairs_below


def _greedy_nearest(pred: NDArray[np.float64], truth: NDArray[np.float64], r: float) -> int:
    """Each prediction in turn takes its nearest free column within r: the naive rule."""
    taken: set[int] = set()
    for p in pred:
        d = np.hypot(*(truth - p).T)
        j = int(np.argmin(d))
        if d[j] <= r and j not in taken:
            taken.add(j)
    return len(taken)


def test_optimal_beats_greedy_nearest_neighbour() -> None:
    truth = np.array([[0.0, 0.0], [1.0, 0.0]])
    pred = np.array([[0.6, 0.0], [1.7, 0.0]])
    # Greedy: 0.6 takes its nearest column x=1 (0.4 away); 1.7 is then 1.7 from x=0.
    assert _greedy_nearest(pred, truth, 1.0) == 1
    m = match_positions(pred, truth, max_distance_px=1.0)
    assert m.n_matched == 2
    np.testing.assert_array_equal(m.predicted_index, [0, 1])
    np.testing.assert_array_equal(m.truth_index, [0, 1])
    np.testing.assert_allclose(m.distance_px, [0.6, 0.7])
    assert math.sqrt(np.mean(m.distance_px**2)) == pytest.approx(math.sqrt(0.425))


def test_smallest_total_among_maximum_matchings() -> None:
    # Columns A=(0,0), B=(4,0); predictions P=(1,0), Q=(-1.1,0); radius 5.2.
    # Both matchings have two pairs: {P-A, Q-B} totals 1 + 5.1 = 6.1 (what
    # smallest-distance-first greedy picks), {P-B, Q-A} totals 3 + 1.1 = 4.1.
    truth = np.array([[0.0, 0.0], [4.0, 0.0]])
    pred = np.array([[1.0, 0.0], [-1.1, 0.0]])
    m = match_positions(pred, truth, max_distance_px=5.2)
    np.testing.assert_array_equal(m.truth_index, [1, 0])
    np.testing.assert_allclose(m.distance_px, [3.0, 1.1])
    assert m.distance_px.sum() == pytest.approx(4.1)


def test_radius_is_inclusive_and_far_pairs_unmatched() -> None:
    truth = np.array([[0.0, 0.0], [10.0, 0.0]])
    pred = np.array([[3.0, 4.0], [10.0, 5.0001]])
    m = match_positions(pred, truth, max_distance_px=5.0)
    np.testing.assert_array_equal(m.predicted_index, [0])
    np.testing.assert_allclose(m.distance_px, [5.0])


def test_star_takes_the_closest_prediction() -> None:
    truth = np.array([[5.0, 5.0]])
    pred = np.array([[5.9, 5.0], [5.0, 5.2], [4.5, 5.0]])
    m = match_positions(pred, truth, max_distance_px=1.0)
    np.testing.assert_array_equal(m.predicted_index, [1])
    np.testing.assert_allclose(m.distance_px, [0.2])


def test_empty_inputs_give_empty_matching() -> None:
    assert match_positions(np.zeros((0, 2)), [[1.0, 1.0]], max_distance_px=1).n_matched == 0
    assert match_positions([[1.0, 1.0]], [], max_distance_px=1).n_matched == 0
    assert match_positions([[1.0, 1.0]], [[9.0, 9.0]], max_distance_px=1).n_matched == 0


@pytest.mark.parametrize("radius", [0.0, -1.0, math.nan, math.inf])
def test_bad_radius(radius: float) -> None:
    with pytest.raises(InputError, match="max_distance_px"):
        match_positions([[0.0, 0.0]], [[0.0, 0.0]], max_distance_px=radius)


@pytest.mark.parametrize("bad", [[[0.0, math.nan]], [[0.0, 1.0, 2.0]], [1.0, 2.0]])
def test_bad_positions(bad: list[float]) -> None:
    with pytest.raises(InputError, match="predicted positions"):
        match_positions(bad, [[0.0, 0.0]], max_distance_px=1.0)


def _brute_force(
    pred: NDArray[np.float64], truth: NDArray[np.float64], r: float
) -> tuple[int, float]:
    """Enumerate every one-to-one matching; best (cardinality, -total distance)."""
    d = np.hypot(pred[:, None, 0] - truth[None, :, 0], pred[:, None, 1] - truth[None, :, 1])
    best = (0, 0.0)

    def walk(i: int, used: frozenset[int], size: int, total: float) -> None:
        nonlocal best
        if i == len(pred):
            if size > best[0] or (size == best[0] and total < best[1] - 1e-12):
                best = (size, total)
            return
        walk(i + 1, used, size, total)
        for j in range(len(truth)):
            if j not in used and d[i, j] <= r:
                walk(i + 1, used | {j}, size + 1, total + d[i, j])

    walk(0, frozenset(), 0, 0.0)
    return best


_coord = st.integers(min_value=0, max_value=12).map(lambda v: v / 4.0)
_points = st.lists(st.tuples(_coord, _coord), min_size=0, max_size=6, unique=True)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(pred=_points, truth=_points, radius=st.sampled_from([0.5, 1.0, 1.6, 3.0]))
def test_matches_brute_force(
    pred: list[tuple[float, float]], truth: list[tuple[float, float]], radius: float
) -> None:
    p = np.array(pred, dtype=np.float64).reshape(-1, 2)
    t = np.array(truth, dtype=np.float64).reshape(-1, 2)
    m = match_positions(p, t, max_distance_px=radius)
    size, total = _brute_force(p, t, radius) if len(p) and len(t) else (0, 0.0)
    assert m.n_matched == size
    assert m.distance_px.sum() == pytest.approx(total, abs=1e-9)
    assert np.unique(m.predicted_index).size == size
    assert np.unique(m.truth_index).size == size
    assert np.all(m.distance_px <= radius)


def test_large_tangled_component_matches_dense_assignment() -> None:
    # 60 predictions and 50 columns crowded in a 10x10 px box with a 3 px radius form
    # one big component; compare with a dense assignment using a cardinality-first cost.
    rng = np.random.default_rng(7)
    pred, truth, r = rng.uniform(0, 10, (60, 2)), rng.uniform(0, 10, (50, 2)), 3.0
    d = np.hypot(pred[:, None, 0] - truth[None, :, 0], pred[:, None, 1] - truth[None, :, 1])
    allowed = d <= r
    rows, cols = linear_sum_assignment(np.where(allowed, d, d[allowed].sum() + 1.0))
    keep = allowed[rows, cols]
    m = match_positions(pred, truth, max_distance_px=r)
    assert m.n_matched == int(keep.sum()) == 50
    assert m.distance_px.sum() == pytest.approx(d[rows, cols][keep].sum(), rel=1e-12)


def test_pairs_below_counts_every_pair_strictly() -> None:
    truth = np.array([[0.0, 0.0], [2.0, 0.0]])
    pred = np.array([[1.0, 0.0], [0.0, 0.5], [5.0, 5.0], [3.0, 4.0]])
    p, t = pairs_below(pred, truth, squared_distance_px2=1.0 + 1e-12)
    np.testing.assert_array_equal(p, [0, 0, 1])
    np.testing.assert_array_equal(t, [0, 1, 0])
    p, _ = pairs_below(pred, truth, squared_distance_px2=1.0)
    np.testing.assert_array_equal(p, [1])
