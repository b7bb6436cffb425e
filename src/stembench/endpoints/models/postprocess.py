"""Segmentation map to column coordinates: the two published post-processing pipelines.

Both functions take a probability map (values in [0, 1], shape (rows, cols)) as produced by a
segmentation network with a sigmoid output, and return column positions in pixels as
(x = column, y = row), float64, shape (N, 2), the centre of the top-left pixel being (0, 0).

- :func:`coordinates_from_probability` is AtomNet's (Ziatdinov's 2019 ``atomfind.py``, and
  AtomAI's ``Locator``): threshold, connected components, centre of mass, edge exclusion.
- :func:`coordinates_from_watershed` is AtomSegNet's (Lin et al. 2021, as run by the
  published app ``Code_Atom_Seg_Ui.py`` and by Wei et al.'s wrapper): the map stretched to 8 bits
  (:func:`stretch_to_uint8`), a Sobel elevation map of the 8-bit map, watershed from markers
  (background below 30, atoms above 100), holes filled, regions labelled, region centroids.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from stembench.errors import InputError
from stembench.validation import validate_image

__all__ = ["coordinates_from_probability", "coordinates_from_watershed", "stretch_to_uint8"]


def _check_map(prob: NDArray[np.floating], name: str) -> NDArray[np.float64]:
    return validate_image(prob, name=f"{name}: probability map")


def _drop_near_edge(
    xy: NDArray[np.float64], shape: tuple[int, int], edge_px: float
) -> NDArray[np.float64]:
    # As published (AtomNet's ``rem_edge_coord``): dropped when closer than ``edge_px`` to 0
    # or beyond ``size - edge_px``.
    rows, cols = shape
    keep = (
        (xy[:, 0] >= edge_px)
        & (xy[:, 0] <= cols - edge_px)
        & (xy[:, 1] >= edge_px)
        & (xy[:, 1] <= rows - edge_px)
    )
    return xy[keep]


def _centroids(
    labels: NDArray[np.integer], count: int, weights: NDArray[np.float64]
) -> NDArray[np.float64]:
    if count == 0:
        return np.zeros((0, 2), dtype=np.float64)
    rows_cols = ndimage.center_of_mass(weights, labels, np.arange(1, count + 1))
    row_col = np.asarray(rows_cols, dtype=np.float64).reshape(count, 2)
    return np.ascontiguousarray(row_col[:, ::-1])


def coordinates_from_probability(
    prob: NDArray[np.floating],
    *,
    threshold: float = 0.5,
    edge_px: float = 5,
    weighting: Literal["binary", "probability"] = "binary",
) -> NDArray[np.float64]:
    """Column positions from a probability map: threshold, components, centres of mass.

    This is AtomNet's post-processing: pixels above ``threshold`` form connected components
    (4-connectivity); each component's centre of mass is one column; columns closer than
    ``edge_px`` to the image border are dropped.

    Parameters
    ----------
    prob : ndarray, shape (rows, cols)
        Probability map, values in [0, 1].
    threshold : float, optional
        Pixels strictly above it belong to a column. Default 0.5.
    edge_px : float, optional
        Columns whose centre lies below this many pixels, or above the image size minus
        this, in either direction are dropped. Default 5 (as published). 0 keeps all.
    weighting : {"binary", "probability"}, optional
        ``"binary"`` (as published) takes the centre of the thresholded component;
        ``"probability"`` weights each pixel of the component by its probability.

    Returns
    -------
    ndarray, shape (N, 2)
        Column positions in pixels as (x = column, y = row), float64.

    Raises
    ------
    InputError
        If ``prob`` is not 2D or holds non-finite values, or an option is out of range.
    """
    array = _check_map(prob, "coordinates_from_probability")
    if edge_px < 0:
        raise InputError(f"coordinates_from_probability: edge_px must be >= 0, got {edge_px}")
    if weighting not in ("binary", "probability"):
        raise InputError(
            "coordinates_from_probability: weighting must be 'binary' or 'probability', "
            f"got {weighting!r}"
        )
    mask = array > threshold
    labels, count = ndimage.label(mask)
    weights = mask.astype(np.float64) if weighting == "binary" else np.where(mask, array, 0.0)
    xy = _centroids(labels, count, weights)
    return _drop_near_edge(xy, array.shape, edge_px)


def stretch_to_uint8(prob: NDArray[np.floating]) -> NDArray[np.uint8]:
    """AtomSegNet's published stretch of the network output to an 8-bit map.

    Negative values are set to 0, the map is min-max scaled to [0, 1], multiplied by
    ``255 / max`` and truncated to ``uint8`` (as ``astype('uint8')`` does). A constant map (for
    which the published arithmetic divides by zero) becomes all zeros.

    Parameters
    ----------
    prob : ndarray, shape (rows, cols)
        The network's output map.

    Returns
    -------
    ndarray of uint8, shape (rows, cols)
    """
    array = np.clip(_check_map(prob, "stretch_to_uint8"), 0.0, None)
    low, high = float(array.min()), float(array.max())
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    unit = (array - low) / (high - low)
    return (unit * 255.0 / float(unit.max())).astype(np.uint8)


def coordinates_from_watershed(
    prob: NDArray[np.floating],
    *,
    background_below: float = 30,
    atom_above: float = 100,
    edge_px: float = 0,
) -> NDArray[np.float64]:
    """Column positions from a probability map by marker-based watershed (AtomSegNet).

    As published: the map is stretched to 8 bits (:func:`stretch_to_uint8`), so the
    thresholds are relative to the map's own range; the Sobel gradient of the 8-bit map is the
    elevation map; a watershed floods it from markers (8-bit values below ``background_below``
    are background, above ``atom_above`` are atom); holes in the atom phase are filled, its
    connected components (4-connectivity) labelled, and each component's centroid is one
    column.

    Parameters
    ----------
    prob : ndarray, shape (rows, cols)
        Probability map, values in [0, 1].
    background_below : float, optional
        Marker threshold for background on the 0-255 scale. Default 30 (as published).
    atom_above : float, optional
        Marker threshold for atoms on the 0-255 scale. Default 100 (as published).
    edge_px : float, optional
        Columns closer than this many pixels to the border are dropped. Default 0
        (the published pipeline keeps all).

    Returns
    -------
    ndarray, shape (N, 2)
        Column positions in pixels as (x = column, y = row), float64.

    Raises
    ------
    InputError
        If ``prob`` is not 2D or holds non-finite values, or the markers overlap.
    """
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    if not background_below < atom_above:
        raise InputError(
            "coordinates_from_watershed: background_below must be below atom_above, got "
            f"{background_below} and {atom_above}"
        )
    if edge_px < 0:
        raise InputError(f"coordinates_from_watershed: edge_px must be >= 0, got {edge_px}")
    stretched = stretch_to_uint8(prob)
    markers = np.zeros(stretched.shape, dtype=np.int32)
    markers[stretched < background_below] = 1
    markers[stretched > atom_above] = 2
    if not np.any(markers == 2):
        return np.zeros((0, 2), dtype=np.float64)
    segmentation = watershed(sobel(stretched), markers)
    atoms = ndimage.binary_fill_holes(segmentation == 2)
    labels, count = ndimage.label(atoms)
    xy = _centroids(labels, count, atoms.astype(np.float64))
    return _drop_near_edge(xy, stretched.shape, edge_px)
