"""Analysis frames, failure patterns, token costs and charts, on records written to a real dynalite."""
from __future__ import annotations

import csv
import io
import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from ocrlab import analysis
from ocrlab.analysis import costs
from ocrlab.analysis.costs import DEFAULT_PRICES, ModelPrice, price_for
from ocrlab.records import failure_item, result_item
from ocrlab.reports import charts, render
from ocrlab.version import OCRVersionInfo

V1 = OCRVersionInfo("1.0.0", "2025-10-01", "base prompt")
V2 = OCRVersionInfo("1.1.0", "2025-10-20", "candidate prompt")
V3 = OCRVersionInfo("9.0.0", "2025-10-22", "an unpriced model")
NOVA = "amazon.nova-lite-v1:0"
TIMESHEET = {"employee_name": "Maria Gonzalez", "employee_id": "E-10472", "week_ending": "2025-10-24",
             "entries": [{"date": "2025-10-20", "time_in": "08:00", "time_out": "16:30", "hours": 8.0}],
             "total_hours": 8.0}


def fail(store, key, ts, version, ftype, code, message, **details):
    item = failure_item(key, ftype, message, version, {"error_code": code, **details})
    item["FailureTimestamp"] = ts
    return store.write(item)


def ok(store, key, ts, version, **details):
    item = result_item(key, version, "raw text", TIMESHEET, details)
    item["FailureTimestamp"] = ts
    return store.write(item)


@pytest.fixture
def filled(store):
    """7 failures (PARSING 4, OCR 2, VALIDATION 1) over 20 and 22 Oct, and 4 results."""
    nova = {"model_id": NOVA, "input_tokens": 1000, "output_tokens": 500, "processing_time": 2.0}
    fail(store, "a.png", "2025-10-20T09:00:00.000000Z", V1, "PARSING_ERROR", "JSONDecodeError",
         "no JSON object at char 12", **nova)
    fail(store, "b.png", "2025-10-20T10:00:00.000000Z", V1, "PARSING_ERROR", "JSONDecodeError",
         "no JSON object at char 40", **nova)
    fail(store, "a.png", "2025-10-22T08:00:00.000000Z", V1, "PARSING_ERROR", "JSONDecodeError",
         "no JSON object at char 7", **nova)
    fail(store, "c.png", "2025-10-22T09:00:00.000000Z", V1, "OCR_ERROR", "ModelErrorException",
         "model failed", model_id=NOVA, processing_time=1.0)
    fail(store, "d.png", "2025-10-22T09:30:00.000000Z", V1, "OCR_ERROR", "ModelErrorException",
         "model failed", model_id=NOVA, processing_time=3.0)
    ok(store, "e.png", "2025-10-20T11:00:00.000000Z", V1, model_id=NOVA, input_tokens=1000,
       output_tokens=200, processing_time=1.5)
    ok(store, "f.png", "2025-10-20T12:00:00.000000Z", V1, model_id=NOVA, input_tokens=1000,
       output_tokens=200, processing_time=2.5)
    fail(store, "a.png", "2025-10-22T10:00:00.000000Z", V2, "VALIDATION_ERROR", "ValidationError",
         "timesheet breaks 1 rule(s)", model_id="rapidocr-3.4.2/PP-OCRv4_mobile", processing_time=0.5)
    fail(store, "b.png", "2025-10-22T10:30:00.000000Z", V2, "PARSING_ERROR", "NoTimesheet",
         "no timesheet could be read", model_id="rapidocr-3.4.2/PP-OCRv4_mobile", processing_time=0.4)
    ok(store, "c.png", "2025-10-22T11:00:00.000000Z", V2, model_id="rapidocr-3.4.2/PP-OCRv4_mobile",
       processing_time=0.7)
    ok(store, "c.png", "2025-10-22T12:00:00.000000Z", V3, model_id="mystery-model", input_tokens=10,
       output_tokens=10, processing_time=0.1)
    return store


def test_failures_frame_types_and_rows(filled, table_name):
    frame = analysis.failures_frame(table_name)  # a table name works as well as a Store
    assert len(frame) == 7 and list(frame.columns[:3]) == ["ImageKey", "FailureTimestamp", "FailureType"]
    assert str(frame["FailureTimestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["FailureTimestamp"].is_monotonic_increasing
    assert frame["ProcessingTimeSeconds"].dtype == "float64"
    assert str(frame["InputTokens"].dtype) == "Int64" and str(frame["AttemptNumber"].dtype) == "Int64"
    assert frame["InputTokens"].isna().sum() == 4  # OCR_ERROR and local-engine failures carry none
    a = frame[frame["ImageKey"] == "a.png"]
    assert a["AttemptNumber"].tolist() == [1, 2, 3]

    assert len(analysis.failures_frame(filled, ocr_version=V2.full_version)) == 2
    assert len(analysis.failures_frame(filled, since="2025-10-21")) == 5
    since = pd.Timestamp("2025-10-22T09:15:00Z")
    assert analysis.failures_frame(filled, ocr_version=V1.full_version, since=since)["ImageKey"].tolist() == ["d.png"]


def test_results_latest_and_records_frames(filled):
    results = analysis.results_frame(filled)
    assert len(results) == 4 and set(results["RecordType"]) == {"OCR_RESULT"}
    assert len(analysis.results_frame(filled, V1.full_version)) == 2
    assert str(results["OutputTokens"].dtype) == "Int64"

    latest = analysis.latest_frame(filled, V1.full_version)
    assert dict(zip(latest["ImageKey"], latest["Outcome"])) == {
        "a.png": "PARSING_ERROR", "b.png": "PARSING_ERROR", "c.png": "OCR_ERROR", "d.png": "OCR_ERROR",
        "e.png": "OK", "f.png": "OK"}
    assert str(latest["FailureTimestamp"].dtype) == "datetime64[ns, UTC]"
    assert latest.loc[latest["ImageKey"] == "a.png", "AttemptNumber"].item() == 2  # its 3rd is under V2

    both = analysis.records_frame(filled)
    assert len(both) == 11 and both["FailureTimestamp"].is_monotonic_increasing
    assert len(analysis.records_frame(filled, V2.full_version)) == 3


def test_failure_patterns_counts(filled):
    patterns = analysis.failure_patterns(analysis.failures_frame(filled))
    assert patterns["by_type"]["count"].to_dict() == {"PARSING_ERROR": 4, "OCR_ERROR": 2, "VALIDATION_ERROR": 1}
    assert patterns["by_type"].loc["PARSING_ERROR", "images"] == 2
    assert math.isclose(patterns["by_type"]["share"].sum(), 1.0)

    by_version = patterns["by_version"]
    assert by_version.loc[V1.full_version].to_dict() == {"OCR_ERROR": 2, "PARSING_ERROR": 3, "VALIDATION_ERROR": 0}
    assert by_version.loc[V2.full_version, "VALIDATION_ERROR"] == 1

    assert patterns["by_error_code"]["count"].to_dict() == {
        "JSONDecodeError": 3, "ModelErrorException": 2, "ValidationError": 1, "NoTimesheet": 1}

    top = patterns["by_fingerprint"].iloc[0]  # numbers are taken out: the three JSON errors are one issue
    assert (top["count"], top["images"], top["failure_type"], top["error_code"]) == (3, 2, "PARSING_ERROR",
                                                                                    "JSONDecodeError")
    assert top["example_message"] == "no JSON object at char 12" and top["example_image"] == "a.png"
    assert top["first_seen"] == pd.Timestamp("2025-10-20T09:00:00Z")
    assert top["last_seen"] == pd.Timestamp("2025-10-22T08:00:00Z")
    assert len(patterns["by_fingerprint"]) == 4

    over = patterns["over_time"]
    assert [t.strftime("%m-%d") for t in over.index] == ["10-20", "10-21", "10-22"]  # the quiet day is a zero
    assert over.sum(axis=1).tolist() == [2, 0, 5]
    assert str(over.index.tz) == "UTC"
    assert analysis.failure_patterns(analysis.failures_frame(filled), freq="h")["over_time"].sum().sum() == 7


def test_token_costs(filled):
    table = costs.token_costs(analysis.records_frame(filled))
    v1 = table.loc[V1.full_version]
    assert (v1["records"], v1["images"], v1["input_tokens"], v1["output_tokens"]) == (7, 6, 5000, 1900)
    assert math.isclose(v1["cost_usd"], 5 * 0.00006 + 1.9 * 0.00024)
    assert math.isclose(v1["cost_per_image_usd"], v1["cost_usd"] / 6)
    assert v1["note"] == ""
    v2 = table.loc[V2.full_version]
    assert v2["cost_usd"] == 0.0 and v2["note"] == ""  # a local engine costs nothing
    v3 = table.loc[V3.full_version]
    assert math.isnan(v3["cost_usd"]) and "mystery-model" in v3["note"]  # unknown: NaN, never 0

    priced = costs.token_costs(analysis.records_frame(filled), {**DEFAULT_PRICES, "mystery-model": (1.0, 2.0)})
    assert math.isclose(priced.loc[V3.full_version, "cost_usd"], 0.01 * 1.0 + 0.01 * 2.0)
    assert costs.token_costs(analysis.records_frame(filled).iloc[:0]).empty


def test_price_lookup():
    nova = DEFAULT_PRICES[NOVA]
    assert price_for(NOVA) == nova == ModelPrice(0.00006, 0.00024)
    assert price_for("us.amazon.nova-lite-v1:0") == nova
    assert price_for("arn:aws:bedrock:us-east-1:123:inference-profile/us.amazon.nova-lite-v1:0") == nova
    assert price_for("tesseract-5.3.0") == ModelPrice(0.0, 0.0)
    assert price_for("amazon.nova-pro-v1:0") is None and price_for(None) is None


def test_processing_times(filled):
    times = analysis.processing_times(analysis.records_frame(filled))
    failures = times.loc[(V1.full_version, "FAILED_IMAGE")]
    assert failures["count"] == 5 and failures["max"] == 3.0 and failures["p50"] == 2.0
    assert math.isclose(failures["mean"], 2.0)
    results = times.loc[(V1.full_version, "OCR_RESULT")]
    assert results["count"] == 2 and math.isclose(results["p90"], 2.4)
    assert list(times.columns) == ["count", "mean", "p50", "p90", "p99", "max"]


def test_charts(filled):
    failures = analysis.failures_frame(filled)
    by_type = charts.plot_failures_by_type(failures)
    assert isinstance(by_type, Figure) and len(by_type.axes[0].patches) == 3
    over = charts.plot_failures_over_time(failures, freq="D")
    assert len(over.axes[0].patches) == 3 * 3  # 3 days x 3 types, stacked
    hourly = charts.plot_failures_over_time(failures)  # 50 hours from first to last: fine enough for hours
    assert len(hourly.axes[0].patches) == 50 * 3 and "per hour" in hourly.axes[0].get_title()
    assert len(charts.plot_failures_by_version(failures).axes[0].patches) == 2 * 3
    prints = charts.plot_top_fingerprints(failures, top=2)
    assert len(prints.axes[0].patches) == 2
    times = charts.plot_processing_times(analysis.records_frame(filled))
    for figure in (by_type, over, prints, times):
        figure.savefig(io.BytesIO(), format="png")
    img = render.figure_to_img(by_type, alt='<"types">')
    assert img.startswith('<img src="data:image/png;base64,iVBOR') and 'alt="&lt;&#34;types&#34;&gt;"' in img


def test_chart_label_with_dollar_signs_renders(store):
    fail(store, "x.png", "2025-10-20T09:00:00.000000Z", V1, "PARSING_ERROR", "X", "costs $5 and $6 <b>")
    charts.plot_top_fingerprints(analysis.failures_frame(store)).savefig(io.BytesIO(), format="png")


def test_empty_store(store):
    failures = analysis.failures_frame(store)
    assert failures.empty and list(failures.columns) == analysis.FAILURE_COLUMNS
    assert str(failures["FailureTimestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(analysis.results_frame(store).columns) == analysis.RESULT_COLUMNS
    assert list(analysis.latest_frame(store, V1.full_version).columns) == analysis.LATEST_COLUMNS
    patterns = analysis.failure_patterns(failures)
    assert all(frame.empty for frame in patterns.values())
    assert list(patterns["by_fingerprint"].columns)[:4] == ["count", "images", "first_seen", "last_seen"]
    assert costs.token_costs(analysis.records_frame(store)).empty
    assert analysis.processing_times(analysis.records_frame(store)).empty
    for plot in (charts.plot_failures_by_type, charts.plot_failures_over_time,
                 charts.plot_failures_by_version, charts.plot_top_fingerprints):
        figure = plot(failures)
        assert any(t.get_text() == "no failures" for t in figure.axes[0].texts)
        figure.savefig(io.BytesIO(), format="png")
    charts.plot_processing_times(analysis.records_frame(store)).savefig(io.BytesIO(), format="png")
    out = io.StringIO()
    assert analysis.export_results_csv(store, None, out) == 0
    assert out.getvalue().startswith("ImageKey,OCRFullVersion,Outcome,")


def test_export_results_csv(filled, tmp_path):
    path = tmp_path / "out" / "results.csv"
    assert analysis.export_results_csv(filled, V1.full_version, path) == 6
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["ImageKey"]: r["Outcome"] for r in rows}["a.png"] == "PARSING_ERROR"
    assert sum(r["Outcome"] == "OK" for r in rows) == 2
    everything = io.StringIO()
    assert analysis.export_results_csv(filled, None, everything) == 6 + 3 + 1  # every version's latest
