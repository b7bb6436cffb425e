"""Analysis of score records: cutoffs, radar, trend and failure figures, and reports.

The analysis reads only score records (plain dicts, see :mod:`.records`), so it runs
anywhere the records are: on a laptop after a remote evaluation, or in the service.
"""

from stembench.client.analysis.axes import AXES, RADAR_AXES, Axis, axis_for_series
from stembench.client.analysis.cutoffs import (
    CRITERIA,
    DEFAULT_CRITERIA,
    METHODS,
    Cutoff,
    CutoffCriteria,
    compute_cutoffs,
)
from stembench.client.analysis.failures import plot_failure
from stembench.client.analysis.radar import plot_radar
from stembench.client.analysis.records import (
    REQUIRED_FIELDS,
    read_records,
    validate_records,
    write_records,
)
from stembench.client.analysis.report import load_report, write_report
from stembench.client.analysis.trends import plot_trends

__all__ = [
    "AXES",
    "CRITERIA",
    "DEFAULT_CRITERIA",
    "METHODS",
    "RADAR_AXES",
    "REQUIRED_FIELDS",
    "Axis",
    "Cutoff",
    "CutoffCriteria",
    "axis_for_series",
    "compute_cutoffs",
    "load_report",
    "plot_failure",
    "plot_radar",
    "plot_trends",
    "read_records",
    "validate_records",
    "write_records",
    "write_report",
]
