"""The failure browser widget on a real dynalite table: filters, pages, a failure's detail, the actions."""
from __future__ import annotations

import csv
import json

import pytest
from support.helpers import V1, V2, V2_FILE

from ocrlab.records import result_item
from ocrlab.samples.generate import generate_samples
from ocrlab.store.failure_log import log_failed_image
from ocrlab.widgets import FailureBrowser, failure_browser

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def seeded(store, tmp_path):
    """Two samples on disk; timesheet-001 failed validation twice under V1, timesheet-002 once with markup."""
    samples = tmp_path / "samples"
    generate_samples(samples, count=2)
    truth = json.loads((samples / "timesheet-001.json").read_text())
    read = dict(truth, total_hours=99.0)
    for _ in range(2):
        log_failed_image(store, "timesheet-001.png", "VALIDATION_ERROR", "timesheet breaks 1 rule(s)", V1,
                         {"error_code": "ValidationError", "raw_ocr_output": "Total hours: 99",
                          "validation_errors": ["total_mismatch: entries sum to 16.5 h, total_hours is 99"],
                          "ParsedTimesheet": read})
    log_failed_image(store, "timesheet-002.png", "PARSING_ERROR", f"no timesheet {SCRIPT}", V1,
                     {"error_code": "NoTimesheet", "raw_ocr_output": SCRIPT})
    store.write(result_item("timesheet-001.png", V2, "raw", truth))
    return store, samples


def test_first_page_lists_newest_first_and_opens_nothing_by_itself(seeded):
    store, samples = seeded
    browser = failure_browser(store, samples, page_size=2)
    assert isinstance(browser, FailureBrowser) and browser.detail is None
    assert [r["ImageKey"] for r in browser.page.records] == ["timesheet-002.png", "timesheet-001.png"]
    assert "PARSING_ERROR" in browser.list.options[0][0] and not browser.next_button.disabled
    browser.next()
    assert [r["AttemptNumber"] for r in browser.page.records] == [1] and browser.next_button.disabled
    browser.previous()
    assert browser.previous_button.disabled


def test_selecting_a_failure_shows_image_fields_rules_and_history(seeded):
    store, samples = seeded
    browser = failure_browser(store, samples, failure_type="VALIDATION_ERROR")
    browser.select(0)
    d = browser.detail
    assert d.image_uri.startswith("data:image/jpeg;base64,") and d.truth is not None
    assert [(r.rule, r.field) for r in d.rules] == [("total_mismatch", "total_hours")]
    total = next(f for f in d.fields if f.name == "total_hours")
    assert total.broken and total.correct is False and total.value == 99.0
    assert [a["RecordType"] for a in d.attempts] == ["FAILED_IMAGE", "FAILED_IMAGE", "OCR_RESULT"]
    assert {r["OCRFullVersion"]: r["RecordType"] for r in d.latest} == {V1.full_version: "FAILED_IMAGE",
                                                                       V2.full_version: "OCR_RESULT"}
    shown = browser.detail_html.value
    assert 'class="broken"' in shown and "total_mismatch" in shown and "Total hours: 99" in shown


def test_filters_from_the_form_and_from_a_failure(seeded):
    store, samples = seeded
    browser = failure_browser(store, samples)
    browser.search.value = "timesheet-002"
    browser.apply()
    assert [r["ImageKey"] for r in browser.page.records] == ["timesheet-002.png"]
    browser.select(0)
    browser.show_fingerprint()  # from a failure to every failure like it
    assert browser.fingerprint_filter.value == browser.query.fingerprint and len(browser.page.records) == 1
    browser.since_filter.value = "not a date"
    browser.apply()
    assert "is not a date" in browser.status.value


def test_unreachable_image_is_a_placeholder_and_text_is_escaped(seeded):
    store, _ = seeded
    browser = failure_browser(store, source=None, failure_type="PARSING_ERROR")
    browser.select(0)
    assert browser.detail.image_uri is None and "not found" in browser.detail.image_where
    page = browser._repr_mimebundle_()["text/html"]
    assert "placeholder" in page and SCRIPT not in page and "&lt;script&gt;" in page
    assert "application/vnd.jupyter.widget-view+json" in browser._repr_mimebundle_()


def test_export_selection_and_all_matching(seeded, tmp_path):
    store, samples = seeded
    browser = failure_browser(store, samples, output_dir=tmp_path / "out")
    browser.select(0, 1)
    browser.export_button.click()
    rows = list(csv.DictReader(browser.last_export.open(encoding="utf-8", newline="")))
    assert [r["ImageKey"] for r in rows] == ["timesheet-002.png", "timesheet-001.png"]
    browser.select(0)
    browser.export_button.click()
    assert "Exported 3 failures matching the filters" in browser.action_output.value


def test_rerun_selection_under_a_candidate_then_compare(seeded, tmp_path):
    store, samples = seeded
    candidate = tmp_path / "candidate.txt"
    candidate.write_text(V2_FILE.replace("2.1.0", "2.2.0"))
    browser = failure_browser(store, samples, failure_type="VALIDATION_ERROR")
    browser.select(0, 1)
    browser.candidate_file.value = str(candidate)
    browser.rerun_button.click()
    assert browser.action_output.value.startswith("<p>Ran"), browser.action_output.value
    comparison = browser.last_comparison
    assert [i.image_key for i in comparison.images] == ["timesheet-001.png"]  # exactly the selection
    assert comparison.outcomes["fixed"] == 1 and "Ran 1 of the 1 selected images" in browser.action_output.value


def test_the_selection_holds_across_pages_and_new_filters_clear_it(seeded, tmp_path):
    store, samples = seeded
    browser = failure_browser(store, samples, output_dir=tmp_path / "out", page_size=2)
    first = browser.page.records
    browser.select(1)
    browser.next()
    assert browser.list.value == () and browser.detail is None  # a page opens nothing by itself
    browser.select(0)
    second = browser.page.records[0]
    assert [r["FailureTimestamp"] for r in browser.selected] == [first[1]["FailureTimestamp"],
                                                                 second["FailureTimestamp"]]
    assert "2 selected" in browser.status.value and "1 on other pages" in browser.status.value
    browser.export_button.click()
    rows = list(csv.DictReader(browser.last_export.open(encoding="utf-8", newline="")))
    assert sorted(r["FailureTimestamp"] for r in rows) == sorted(r["FailureTimestamp"] for r in browser.selected)
    assert 'class="ocrlab-download"' in browser.action_output.value  # a download, as the export panel offers
    browser.previous()
    assert browser.list.value == (1,) and browser.action_output.value == ""  # the export was the other page's
    browser.search.value = "timesheet"
    browser.apply()
    assert browser.selected == [] and browser.list.value == ()


def test_rerun_of_s3_images_reads_them_from_their_bucket(store, bucket, tmp_path):
    client, name = bucket
    samples = tmp_path / "samples"
    generate_samples(samples, count=1)
    client.put_object(Bucket=name, Key="in/2025/sheet.png", Body=(samples / "timesheet-001.png").read_bytes())
    client.put_object(Bucket=name, Key="in/2026/garbage.png", Body=b"garbage")
    for key in ("in/2025/sheet.png", "in/2026/garbage.png"):
        log_failed_image(store, key, "OCR_ERROR", "model error", V1, {"error_code": "ModelErrorException",
                                                                    "s3_bucket": name})
    candidate = tmp_path / "candidate.txt"
    candidate.write_text(V2_FILE)
    browser = failure_browser(store)
    browser.select(0, 1)
    assert browser.detail.image_where.startswith(f"s3://{name}/in/")
    browser.candidate_file.value = str(candidate)
    browser.rerun_button.click()
    assert "Ran 2 of the 2 selected images" in browser.action_output.value, browser.action_output.value
    assert browser.last_comparison.outcomes["fixed"] == 1  # the timesheet read; the garbage fails again
