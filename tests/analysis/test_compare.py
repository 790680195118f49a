"""Version comparison and its HTML report, on records written to a real dynalite."""
from __future__ import annotations

import copy
import json
import math

import pytest

from ocrlab.analysis.compare import compare_versions
from ocrlab.evaluation.fields import GroundTruth, score_fields
from ocrlab.records import result_item
from ocrlab.reports import render
from ocrlab.reports.comparison import render_comparison_html, write_comparison
from ocrlab.store.failure_log import log_failed_image
from ocrlab.version import OCRVersionInfo

BASE = OCRVersionInfo("1.0.0", "2025-10-01", "base prompt")
CAND = OCRVersionInfo("1.1.0", "2025-10-20", "candidate prompt")


def timesheet(name: str) -> dict:
    return {"employee_name": name, "employee_id": "E-10472", "week_ending": "2025-10-24",
            "entries": [{"date": "2025-10-20", "time_in": "08:00", "time_out": "16:30", "hours": 8.0},
                        {"date": "2025-10-21", "time_in": "08:00", "time_out": "17:00", "hours": 8.5}],
            "total_hours": 16.5}  # 4 + 2 * 4 = 12 fields


def ok(store, version, key, ts=None, raw=None, tokens=(1000, 200), seconds=2.0):
    item = result_item(key, version, raw if raw is not None else json.dumps(ts or timesheet(key)), ts or timesheet(key),
                       {"model_id": "amazon.nova-lite-v1:0", "input_tokens": tokens[0], "output_tokens": tokens[1],
                        "processing_time": seconds})
    return store.write(item)


def fail(store, version, key, ftype="PARSING_ERROR", raw="not json", code="JSONDecodeError", seconds=1.0):
    return log_failed_image(store, key, ftype, f"cannot read {key}", version,
                            {"error_code": code, "raw_ocr_output": raw, "input_tokens": 1000,
                             "output_tokens": 50, "processing_time": seconds})


FIXED, REGRESSED, STILL, UNCHANGED = ["f1", "f2", "f3"], ["r1", "r2"], ["s1"], ["u1", "u2", "u3", "u4"]


@pytest.fixture
def scenario(store, tmp_path):
    """3 fixed, 2 regressed, 1 still failing, 4 unchanged, 1 new, 1 not run; ground truth for all but x1."""
    for key in FIXED:
        fail(store, BASE, f"scans/{key}.png")
        ok(store, CAND, f"scans/{key}.png")
    for key in REGRESSED:
        ok(store, BASE, f"scans/{key}.png")
        fail(store, CAND, f"scans/{key}.png", "OCR_ERROR", raw="", code="ModelErrorException", seconds=4.0)
    fail(store, BASE, "scans/r1.png")  # an older attempt: r1's latest base outcome is still the result
    store.write(result_item("scans/r1.png", BASE, json.dumps(timesheet("scans/r1.png")),
                                 timesheet("scans/r1.png"), {"input_tokens": 1000, "output_tokens": 200}))
    fail(store, BASE, "scans/s1.png", "VALIDATION_ERROR", code="ValidationError")
    fail(store, CAND, "scans/s1.png", "PARSING_ERROR", raw="still not json")
    wrong_id = dict(timesheet("scans/u1.png"), employee_id="E-1O472")
    ok(store, BASE, "scans/u1.png", wrong_id)
    ok(store, CAND, "scans/u1.png")
    for key in UNCHANGED[1:]:
        ok(store, BASE, f"scans/{key}.png")
        ok(store, CAND, f"scans/{key}.png", tokens=(1100, 180))
    ok(store, CAND, "scans/n1.png")
    fail(store, BASE, "scans/x1.png", "INPUT_ERROR", raw="", code="UnidentifiedImageError")

    truth = tmp_path / "gt"
    truth.mkdir()
    for key in FIXED + REGRESSED + STILL + UNCHANGED + ["n1"]:
        (truth / f"{key}.json").write_text(json.dumps(timesheet(f"scans/{key}.png")), encoding="utf-8")
    (truth / "manifest.json").write_text("[1, 2]", encoding="utf-8")  # not a timesheet, never matched
    return store, truth


def test_counts_and_statuses(scenario):
    store, truth = scenario
    c = compare_versions(store, BASE.full_version, CAND.full_version, truth)
    # Every image in one category (u1 read one more field right: improved; s1 failed otherwise: other) ...
    assert c.counts == {"regressed": 2, "improved": 4, "other": 1, "unchanged": 3, "new": 1, "not_run": 1}
    assert sum(c.counts.values()) == len(c.images)
    # ... and what happened to the outcomes alone, under words of their own.
    assert c.outcomes == {"fixed": 3, "broken": 2, "still_failing": 1, "still_ok": 4, "new": 1, "not_run": 1}
    assert ("12 images: 2 regressed, 4 fixed or improved, 1 changed otherwise, 3 unchanged, 1 new (candidate only), "
            "1 not run by the candidate; outcomes: 3 fixed, 2 broken, 1 failed by both, 4 read by both") in c.summary()
    by_key = {i.image_key: i for i in c.images}
    assert by_key["scans/f1.png"].base.outcome == "PARSING_ERROR" and by_key["scans/f1.png"].candidate.outcome == "OK"
    r1 = by_key["scans/r1.png"]
    assert (r1.status, r1.candidate.outcome, r1.candidate.error_code) == ("broken", "OCR_ERROR",
                                                                          "ModelErrorException")
    assert r1.deltas() == {"input_tokens": 0, "output_tokens": -150, "seconds": None}  # base result: no time
    s1 = by_key["scans/s1.png"]
    assert (s1.base.outcome, s1.candidate.outcome) == ("VALIDATION_ERROR", "PARSING_ERROR") and s1.changed
    assert by_key["scans/u1.png"].parsed_changed is True and by_key["scans/u1.png"].changed
    u2 = by_key["scans/u2.png"]
    assert u2.parsed_changed is False and u2.raw_changed is False and not u2.changed
    assert u2.raw_cer is None and u2.base.raw is None  # not shown: its texts are never read
    assert u2.deltas() == {"input_tokens": 100, "output_tokens": -20, "seconds": 0.0}
    assert by_key["scans/u1.png"].raw_cer == pytest.approx(1 / len(json.dumps(timesheet("scans/u1.png"))), rel=0.1)
    assert [i.status for i in c.changed()][:5] == ["broken", "broken", "fixed", "fixed", "fixed"]
    assert by_key["scans/n1.png"].base is None and by_key["scans/x1.png"].candidate is None


def test_field_accuracy(scenario):
    store, truth = scenario
    c = compare_versions(store, BASE.full_version, CAND.full_version, truth)
    base, cand = c.field_accuracy["base"], c.field_accuracy["candidate"]
    # base: f1-f3 and s1 failed (0/12 each), r1 r2 u2-u4 right (12/12), u1 one wrong id (11/12); x1 has no truth
    assert (base.images, base.fields, base.fields_correct) == (10, 120, 71)
    # candidate: r1 r2 s1 failed; f1-f3, u1-u4 and n1 right
    assert (cand.images, cand.fields, cand.fields_correct) == (11, 132, 96)
    assert base.by_field()["employee_id"] == {"correct": 5, "total": 10, "accuracy": 0.5}
    assert base.by_field()["entry.hours"]["total"] == 20
    assert {i.image_key: i.base_fields for i in c.images}["scans/u1.png"] == (11, 12)
    assert not any("manifest" in w for w in c.warnings)


def test_score_fields_rules():
    truth = timesheet("Maria Gonzalez")
    got = copy.deepcopy(truth)
    got.update(total_hours="16.50", employee_name="  Maria   Gonzalez ")  # numeric string, spacing
    got["entries"][0]["hours"] = 8.004
    got["entries"].append({"date": "2025-10-22", "time_in": "x", "time_out": "y", "hours": 1})  # extra: ignored
    assert all(ok for _, ok in score_fields(truth, got)) and len(score_fields(truth, got)) == 12
    got["entries"] = got["entries"][:1]  # the missing second entry's 4 fields are wrong
    assert sum(not ok for _, ok in score_fields(truth, got)) == 4
    assert not any(ok for _, ok in score_fields(truth, None))
    assert GroundTruth.stem("s3://bucket/a/b/NAME.v2.png") == "NAME.v2" and GroundTruth.stem("a\\NAME.PNG") == "NAME"


def test_json_is_strict_and_complete(scenario, tmp_path):
    store, truth = scenario
    out = tmp_path / "c.json"
    c = compare_versions(store, BASE.full_version, CAND.full_version, truth)
    write_comparison(c, json_path=out, html_path=tmp_path / "c.html")
    data = json.loads(out.read_text(encoding="utf-8"), parse_constant=lambda name: pytest.fail(name))
    assert data["counts"] == c.counts and data["outcomes"] == c.outcomes and data["images_total"] == 12
    assert data["field_accuracy"]["candidate"]["correct"] == 96
    assert data["totals"]["images_compared"] == 10
    assert data["images"][0]["status"] == "broken" and data["images"][0]["category"] == "regressed"
    assert (tmp_path / "c.html").is_file()
    frame = c.frame()
    assert len(frame) == 12 and frame["status"].value_counts()["still_ok"] == 4
    assert frame["category"].value_counts().to_dict() == {k: v for k, v in c.counts.items() if v}
    assert math.isclose(frame.set_index("image_key").loc["scans/u1.png", "base_field_accuracy"], 11 / 12)


def test_html_regressions_first(scenario, tmp_path):
    store, truth = scenario
    c = compare_versions(store, BASE.full_version, CAND.full_version, truth)
    page = render_comparison_html(c, tmp_path / "report" / "compare.html").read_text(encoding="utf-8")
    first = {key: page.index(f"scans/{key}.png") for key in REGRESSED + FIXED + ["u1", "s1"]}
    assert max(first[k] for k in REGRESSED) < min(first[k] for k in FIXED)
    assert max(first[k] for k in FIXED) < min(first["u1"], first["s1"])
    # u1 read one more field right: an improvement; s1 failed differently: another change.
    assert page.index("Regressed (2)") < page.index("Fixed or improved (4)") < page.index("Changed otherwise (1)")
    assert "<b>3</b> unchanged (not shown)" in page and page.count('<section class="image') == 7
    assert "E-1<del>O</del>472" in page and "E-1<ins>0</ins>472" in page  # u1's changed character
    assert "<script" not in page


def test_fields_that_got_worse_are_a_regression_even_when_both_are_ok(store, tmp_path):
    """The issue's case: both outcomes OK, employee_name wrong under the candidate: a regression, named."""
    truth = tmp_path / "gt"
    truth.mkdir()
    for key in ("a", "b"):
        (truth / f"{key}.json").write_text(json.dumps(timesheet(f"{key}.png")), encoding="utf-8")
        ok(store, BASE, f"{key}.png")
    ok(store, CAND, "a.png", dict(timesheet("a.png"), employee_name="Maria Gonza1ez"))
    ok(store, CAND, "b.png")
    c = compare_versions(store, BASE.full_version, CAND.full_version, truth)
    assert c.outcomes["broken"] == 0 and c.outcomes["still_ok"] == 2  # outcomes alone say nothing broke
    assert c.counts["regressed"] == 1 and c.counts["unchanged"] == 1
    a = next(i for i in c.images if i.image_key == "a.png")
    assert a.regression and a.fields_lost == ["employee_name"] and a.group == "regressed"
    assert [i.image_key for i in c.regressions()] == ["a.png"]
    fields = {r["field"]: r["change"] for r in c.field_regressions()}
    assert fields == {"employee_name": pytest.approx(-0.5), "all fields": pytest.approx(-1 / 24)}
    page = render_comparison_html(c, tmp_path / "c.html").read_text(encoding="utf-8")
    assert page.index("Regressed (1)") < page.index("Fields less accurate") < page.index("Lost: employee_name")
    assert page.index("Lost: employee_name") < page.index("Fixed or improved (0)")
    changes = c.changes_frame()
    assert list(changes["image"]) == ["a.png"] and changes.loc[0, "fields lost"] == "employee_name"
    assert c.to_dict()["counts"]["regressed"] == 1


def test_html_escapes_text_from_images_and_models(store, tmp_path):
    key = "<script>alert(1)</script>.png"
    # Whole lines deleted and inserted, so each appears unbroken by character highlights.
    ok(store, BASE, key, raw='same\n<script>alert(2)</script> & co\nsame too')
    fail(store, CAND, key, raw="same\nsame too\n<b>bold</b> &amp; more")
    c = compare_versions(store, BASE.full_version, CAND.full_version)
    assert c.counts["regressed"] == 1
    page = render_comparison_html(c, tmp_path / "x.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; co" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;amp; more" in page
    assert "cannot read &lt;script&gt;" in page  # the error message too


def test_empty_store_and_unknown_versions(store, tmp_path):
    c = compare_versions(store, "1.0.0-2025-10-01", "1.1.0-2025-10-20")
    assert c.images == [] and set(c.counts.values()) == {0} and c.field_accuracy is None
    assert len(c.warnings) == 2 and "versions in the store: none" in c.warnings[0]
    assert c.to_dict()["images"] == [] and c.frame().empty and "0 images" in c.summary()
    page = render_comparison_html(c, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "Regressed (0)" in page
    gt = tmp_path / "gt"
    gt.mkdir()
    c = compare_versions(store, "a", "b", gt)
    assert c.field_accuracy["base"].accuracy is None and c.to_dict()["field_accuracy"]["base"]["accuracy"] is None


def test_side_by_side_diff_rows():
    a = "\n".join(f"line {n}" for n in range(20)) + "\nTotal hours: 16.5"
    b = "\n".join(f"line {n}" for n in range(20)) + "\nTotal hours: 18.5\nextra"
    rows = render.side_by_side(a, b, context=2)
    assert [r.kind for r in rows] == ["skip", "equal", "equal", "replace", "insert"]
    assert rows[0].skipped == 18
    changed = [s.text for s in rows[3].right if s.changed]
    assert changed == ["8"] and [s.text for s in rows[3].left if s.changed] == ["6"]
    assert render.side_by_side("same", "same")[0].kind == "equal"
