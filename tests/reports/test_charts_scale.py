"""Charts that stay readable at any size: bounded bars, top-N with other, capped outliers, whole-number counts."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.ticker import MaxNLocator

from ocrlab.reports import charts

TYPES = ["PARSING_ERROR", "OCR_ERROR", "VALIDATION_ERROR"]


def failures(hours: int, codes: int = 3) -> pd.DataFrame:
    """One failure an hour for `hours` hours, types and codes in turn."""
    n = np.arange(hours)
    return pd.DataFrame({"ImageKey": [f"{i}.png" for i in n],
                         "FailureTimestamp": pd.Timestamp("2025-06-01T00:00Z") + pd.to_timedelta(n, unit="h"),
                         "FailureType": [TYPES[i % 3] for i in n], "ErrorCode": [f"Code{i % codes}" for i in n],
                         "OCRFullVersion": [f"1.{i % 40}.0" for i in n], "FailureFingerprint": [f"f{i % 7}" for i in n],
                         "ErrorMessage": "m"})


def _bars(figure) -> int:
    """Distinct bar positions on the chart (stacked segments share one)."""
    return len({round(p.get_x(), 6) for p in figure.axes[0].patches})


@pytest.mark.parametrize("freq", [None, "h", "D"])
def test_180_days_have_at_most_100_bars(freq):
    figure = charts.plot_failures_over_time(failures(180 * 24), freq=freq)
    assert 20 <= _bars(figure) <= 100
    assert "per week" in figure.axes[0].get_title()
    assert isinstance(figure.axes[0].yaxis.get_major_locator(), MaxNLocator)
    figure.savefig(io.BytesIO(), format="png")


def test_bins_follow_the_span():
    assert charts.plot_failures_over_time(failures(48)).axes[0].get_title().endswith("(per hour, UTC)")
    assert _bars(charts.plot_failures_over_time(failures(48))) == 48
    assert "per day" in charts.plot_failures_over_time(failures(30 * 24)).axes[0].get_title()
    assert "per month" in charts.plot_failures_over_time(failures(3 * 365 * 24)).axes[0].get_title()


def test_many_categories_are_the_top_ones_and_other():
    frame = failures(2000, codes=60)
    codes = charts.plot_failures_by_error_code(frame)
    labels = [t.get_text() for t in codes.axes[0].get_yticklabels()]
    assert len(labels) == charts.TOP + 1 and labels[0].startswith("other (45)")  # drawn bottom-up
    versions = charts.plot_failures_by_version(frame)
    assert _bars(versions) == charts.TOP + 1
    assert sum(p.get_height() for p in versions.axes[0].patches) == 2000  # nothing lost in "other"


def test_box_plots_draw_at_most_the_cap_of_outliers():
    rng = np.random.default_rng(3)
    seconds = np.concatenate([rng.lognormal(0, 1, 20_000), rng.lognormal(0, 1, 500)])
    frame = pd.DataFrame({"OCRFullVersion": ["1.0.0"] * 20_000 + ["2.0.0"] * 500,
                          "RecordType": "OCR_RESULT", "ProcessingTimeSeconds": seconds})
    figure = charts.plot_processing_times(frame)
    points = [line for line in figure.axes[0].lines if line.get_marker() == "o"]
    assert len(points) == 2 and all(len(line.get_ydata()) == charts.MAX_OUTLIERS for line in points)
    assert max(points[0].get_ydata()) == pytest.approx(seconds[:20_000].max())  # the most extreme is kept
