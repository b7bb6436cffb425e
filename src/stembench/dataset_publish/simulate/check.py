"""``stembench dataset check``: compare every clean image's noise-free peaks with its labels.

A *clean* image is step 0 of its series (the undegraded reference, and every generality
image) with a stored noise-free image;
:func:`stembench.dataset_publish.simulate.visibility.check_labels`
compares its peaks with its visible labels. Degraded steps are not checked: blur,
coarse pixels and low contrast legitimately hide peaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stembench.dataset_publish.simulate.visibility import LabelProblem, check_labels

__all__ = ["LabelCheck", "check_dataset"]


@dataclass
class LabelCheck:
    """What :func:`check_dataset` found.

    Attributes
    ----------
    checked : list of str
        Ids of the clean images checked.
    skipped : int
        Images not checked (degraded steps, or no noise-free image).
    problems : dict of str to list of LabelProblem
        Per checked image with a disagreement, what was found.
    """

    checked: list[str] = field(default_factory=list)
    skipped: int = 0
    problems: dict[str, list[LabelProblem]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no checked image disagrees with its labels."""
        return not self.problems


def check_dataset(path: str | Path, *, verify: bool = True) -> LabelCheck:
    """Check the labels of every clean image of a dataset file against its noise-free image.

    Parameters
    ----------
    path : str or Path
        Dataset file (stembench or published layout).
    verify : bool
        Verify the arrays and metadata read against the manifest.

    Returns
    -------
    LabelCheck
    """
    from stembench.dataset_publish.storage.stembench_layout import open_dataset

    report = LabelCheck()
    with open_dataset(path, verify=verify) as dataset:
        for image_id in dataset.ids:
            if dataset.metadata(image_id).get("step") != 0:
                report.skipped += 1
                continue
            image = dataset[image_id]
            if image.raw is None:
                report.skipped += 1
                continue
            report.checked.append(image_id)
            found = check_labels(image.raw, image.coords, pixel_size=image.pixel_size)
            if found:
                report.problems[image_id] = found
    return report
