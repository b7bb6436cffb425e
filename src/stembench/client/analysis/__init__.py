"""Analysis of score records: cutoffs, radar, trend and failure figures, and reports.

The analysis reads only score records (plain dicts, see :mod:`.records`), so it runs
anywhere the records are: on a laptop after a remote evaluation, or in the service.
"""

from stembench.client.analysis.axes import AXES, RADAR_AXES, Axis, axis_for_series
from stembench.client.analysis.cutoffs import (
    CRITERIA,
    METHODS,
    Cutoff,
    CutoffCriteria,
    compute_cutoffs,
)
from stembench.client.analysis.records import (
    REQUIRED_FIELDS,
    read_records,
    validate_records,
    write_records,
)

__all__ = [
    "AXES",
    "CRITERIA",
    "METHODS",
    "RADAR_AXES",
    "REQUIRED_FIELDS",
    "Axis",
    "Cutoff",
    "CutoffCriteria",
    "axis_for_series",
    "compute_cutoffs",
    "read_records",
    "validate_records",
    "write_records",
]
