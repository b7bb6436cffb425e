"""Review pictures of proposed labels: an overlay figure and an HTML page with zoomable tiles.

Sure columns are drawn as green circles, unsure ones as orange crosses with their number
(the CSV's data row), so a person can find them in the CSV and correct it. The image is
shown lightly smoothed (:data:`DISPLAY_SMOOTHING_ANGSTROM`) with a 0.5-99.5 percentile
stretch. Images larger than ``tile_px`` on a side are also cut into tiles drawn at one screen
pixel per image pixel (or larger), which the HTML page shows in a grid with a zoom slider.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stembench.dataset_publish.labelling.propose import LabelProposal

__all__ = ["DISPLAY_SMOOTHING_ANGSTROM", "plot_overlay", "write_review_html"]

#: Gaussian smoothing of the displayed image (A; less 0.5 px), as the detector smooths before
#: finding peaks, so that noisy columns are visible to the eye. Positions are not affected.
DISPLAY_SMOOTHING_ANGSTROM = 0.15


def _draw(ax: Any, image: NDArray[np.floating], proposal: LabelProposal,
          window: tuple[int, int, int, int], *, marker_px: float, numbers: bool) -> None:
    """Draw the crop ``(row0, row1, col0, col1)`` with its columns, in image pixel units."""
    from scipy import ndimage

    r0, r1, c0, c1 = window
    crop = np.asarray(image[r0:r1, c0:c1], dtype=np.float64)
    crop = ndimage.gaussian_filter(crop, max(0.0, DISPLAY_SMOOTHING_ANGSTROM
                                             / proposal.pixel_size - 0.5))
    low, high = np.percentile(crop, [0.5, 99.5])
    ax.imshow(crop, cmap="gray", vmin=low, vmax=max(high, low + 1e-12),
              extent=(c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5), interpolation="nearest")
    x, y = proposal.coords[:, 0], proposal.coords[:, 1]
    inside = (x >= c0 - 0.5) & (x < c1 - 0.5) & (y >= r0 - 0.5) & (y < r1 - 0.5)
    sure = proposal.sure
    ax.scatter(x[inside & sure], y[inside & sure], s=marker_px**2, facecolors="none",
               edgecolors="lime", linewidths=0.8)
    ax.scatter(x[inside & ~sure], y[inside & ~sure], s=marker_px**2, marker="x",
               c="orange", linewidths=1.0)
    if numbers:
        for k in np.flatnonzero(inside & ~sure):
            ax.annotate(str(k + 1), (x[k], y[k]), xytext=(3, 3), textcoords="offset points",
                        color="orange", fontsize=6)
    ax.set_xlim(c0 - 0.5, c1 - 0.5)
    ax.set_ylim(r1 - 0.5, r0 - 0.5)
    ax.set_axis_off()


def plot_overlay(image: NDArray[np.floating], proposal: LabelProposal, path: str | Path, *,
                 title: str = "") -> Path:
    """Save the whole image with every proposed column (PNG, at most ~1600 px wide).

    Parameters
    ----------
    image : numpy.ndarray
        The image, 2-D.
    proposal : LabelProposal
        The proposed columns (positions in pixels, x = column, y = row).
    path : str or pathlib.Path
        The PNG file to write.
    title : str, optional
        Figure title; default none.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = image.shape
    scale = min(1.0, 1600.0 / max(rows, cols))
    fig = plt.figure(figsize=(cols * scale / 100 + 0.2, rows * scale / 100 + 0.5), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, rows / (rows + 50 / scale)))
    spacing = _typical_spacing(proposal)
    _draw(ax, image, proposal, (0, rows, 0, cols), marker_px=max(2.0, 0.35 * spacing * scale),
          numbers=scale >= 0.5)
    n_unsure = int((~proposal.sure).sum())
    fig.suptitle(f"{title}  {len(proposal.coords)} columns: {len(proposal.coords) - n_unsure} "
                 f"sure (green), {n_unsure} unsure (orange)", fontsize=9, y=0.995)
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _typical_spacing(proposal: LabelProposal) -> float:
    if len(proposal.coords) < 2:
        return 10.0
    from scipy.spatial import cKDTree

    return float(np.median(cKDTree(proposal.coords).query(proposal.coords, k=2)[0][:, 1]))


def _tile(image: NDArray[np.floating], proposal: LabelProposal,
          window: tuple[int, int, int, int], path: Path, zoom: float) -> None:
    import matplotlib.pyplot as plt

    r0, r1, c0, c1 = window
    fig = plt.figure(figsize=((c1 - c0) * zoom / 100, (r1 - r0) * zoom / 100), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    _draw(ax, image, proposal, window, marker_px=max(3.0, 0.35 * _typical_spacing(proposal)
                                                     * zoom), numbers=True)
    fig.savefig(path)
    plt.close(fig)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1em}} .grid{{display:grid;gap:2px;
grid-template-columns:repeat({n_cols},auto);width:max-content}} .grid img{{display:block;
width:calc({tile}px * var(--zoom,1))}} td,th{{padding:0 .5em;text-align:left}}</style></head>
<body><h1>{title}</h1>
<p>{summary}</p>
<p>Green circles: sure columns. Orange crosses: unsure columns, numbered by their data row
in <code>{csv}</code>. Correct the CSV (delete false columns, add missed ones with
<code>confidence</code> <code>sure</code>, mark doubtful ones <code>unsure</code>: they are not
scored), then: <code>stembench dataset import {image} {csv} --output labelled.h5</code></p>
<p><img src="{overview}" alt="overview" style="max-width:100%"></p>
{tiles}
<h2>Unsure columns</h2>
<table><tr><th>row</th><th>x</th><th>y</th><th>reason</th></tr>
{rows}
</table></body></html>
"""


def write_review_html(image: NDArray[np.floating], proposal: LabelProposal, folder: str | Path,
                      *, stem: str, image_name: str, csv_name: str, overview: Path,
                      tile_px: int = 512) -> Path:
    """Write ``<stem>.html`` (and, for an image larger than ``tile_px``, its tiles).

    Parameters
    ----------
    image, proposal
        As in :func:`plot_overlay`.
    folder : str or pathlib.Path
        Folder the page (and its tiles) are written into.
    stem : str
        File name of the page without ``.html``.
    image_name : str
        The image file's name, in the page's title and its import command.
    csv_name : str
        The proposal's CSV file name, the file the page asks to correct.
    overview : pathlib.Path
        The overlay PNG (:func:`plot_overlay`) shown at the top, in ``folder``.
    tile_px : int, optional
        Side of a zoomed tile in image pixels; default 512.

    Returns
    -------
    Path
        The HTML page.
    """
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    rows, cols = image.shape
    tiles_html = ""
    zoom = max(1.0, 8.0 / max(_typical_spacing(proposal), 1.0))  # >= 8 screen px per column
    if max(rows, cols) > tile_px:
        tile_dir = folder / f"{stem}_tiles"
        tile_dir.mkdir(parents=True, exist_ok=True)
        cells = []
        for r0 in range(0, rows, tile_px):
            for c0 in range(0, cols, tile_px):
                name = f"tile_r{r0:05d}_c{c0:05d}.png"
                _tile(image, proposal, (r0, min(r0 + tile_px, rows), c0,
                                        min(c0 + tile_px, cols)), tile_dir / name, zoom)
                cells.append(f'<a href="{tile_dir.name}/{name}"><img src="{tile_dir.name}/'
                             f'{name}" title="rows {r0}-, cols {c0}-" loading="lazy"></a>')
        tiles_html = (
            f"<h2>Tiles ({len(cells)}, {tile_px} px each; click one for full size)</h2>"
            '<p>zoom <input type="range" min="0.25" max="4" step="0.25" value="1" '
            "oninput=\"document.getElementById('grid').style.setProperty('--zoom', "
            'this.value)"></p>'
            f'<div class="grid" id="grid">{"".join(cells)}</div>'
        )
    n_unsure = int((~proposal.sure).sum())
    table = "\n".join(
        f"<tr><td>{k + 1}</td><td>{proposal.coords[k, 0]:.1f}</td>"
        f"<td>{proposal.coords[k, 1]:.1f}</td><td>{html.escape(proposal.reasons[k])}</td></tr>"
        for k in np.flatnonzero(~proposal.sure))
    page = _PAGE.format(
        title=html.escape(f"stembench label: {image_name}"),
        n_cols=-(-cols // tile_px), tile=int(tile_px * zoom),
        summary=html.escape(f"{rows} x {cols} px at {proposal.pixel_size:.4g} A/px; "
                            f"{len(proposal.coords)} columns proposed, {n_unsure} unsure."),
        csv=html.escape(csv_name), image=html.escape(image_name),
        overview=html.escape(overview.name), tiles=tiles_html, rows=table)
    path = folder / f"{stem}.html"
    path.write_text(page, encoding="utf-8")
    return path
