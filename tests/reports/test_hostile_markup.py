"""Text from the data is never live markup: every report, comparison page, the failure browser and the
export panel, on a table whose every text attribute carries hostile markup.

What a page must not hold is checked on its parsed elements (an HTML parser, as a browser reads it): no
`<script>`, no attribute `on...`, no `javascript:` URL. The hostile text itself must be there, escaped:
a page that dropped it would pass for the wrong reason.
"""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from ocrlab.records import result_item
from ocrlab.reports import run_report
from ocrlab.reports.comparison import comparison_files, render_comparison_html
from ocrlab.store import open_store
from ocrlab.store.failure_log import log_failed_image
from ocrlab.version import OCRVersionInfo

REPO = Path(__file__).resolve().parents[2]
IMG = '<img src=x onerror="alert(1)">'
LINK = '<a href="javascript:alert(2)">click</a>'
FORM = '<form action="javascript:alert(3)"><button formaction="javascript:alert(4)">go</button></form>'
SCRIPT = "<script>alert(5)</script>"
HOSTILE = f"{IMG}{LINK}{FORM}{SCRIPT}"
KEY = f"{IMG}.png"
BASE = OCRVersionInfo("1.0.0", "2025-10-01", f"base {HOSTILE}")
CANDIDATE = OCRVersionInfo("1.1.0", "2025-10-20", f"candidate {HOSTILE}")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster", "background"}


class LiveMarkup(HTMLParser):
    """Every element a browser would make live: scripts, event handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append("<script>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            url = "".join((value or "").split()).lower()
            if name in URL_ATTRIBUTES and url.startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")


def live_markup(html: str) -> list[str]:
    parser = LiveMarkup()
    parser.feed(html)
    parser.close()
    return parser.found


def assert_inert(name: str, html: str) -> None:
    assert live_markup(html) == [], name
    assert "alert(" in html, f"{name}: the hostile text is not shown at all"


def _parsed(name: str) -> dict:
    return {"employee_name": name, "employee_id": f"E-1 {LINK}", "week_ending": "2025-10-24",
            "entries": [{"date": "2025-10-20", "time_in": "08:00", "time_out": f"16:30{IMG}", "hours": 8.0}],
            "total_hours": 8.0}


@pytest.fixture(scope="module")
def hostile(dynalite, tmp_path_factory):
    """A table whose every text attribute is hostile: key, message, code, raw output, parsed values,
    validation errors, repairs, version descriptions; under two versions, so a comparison has changes."""
    store = open_store(f"hostile-{uuid.uuid4().hex[:10]}")
    repairs = json.dumps([{"rule": "split_tokens", "field": f"entries[1].date{IMG}", "before": LINK, "after": SCRIPT}])
    for version in (BASE, CANDIDATE):
        log_failed_image(store, KEY, "VALIDATION_ERROR", f"breaks {HOSTILE}", version,
                         {"error_code": f"Code{SCRIPT}", "raw_ocr_output": f"raw {version.version} {HOSTILE}",
                          "validation_errors": [f"total_mismatch: {HOSTILE}"], "stack_trace": HOSTILE,
                          "ParsedTimesheet": json.dumps(_parsed(HOSTILE)), "ParseRepairs": repairs,
                          "ParseRepairsBase": 1, "model_id": LINK, "processing_time": 1.0})
    store.write(result_item(f"b{LINK}.png", BASE, f"read {HOSTILE}", _parsed(f"one {IMG}"),
                            {"ParseRepairs": repairs, "ParseRepairsBase": 1}))
    log_failed_image(store, f"b{LINK}.png", "PARSING_ERROR", f"lost {SCRIPT}", CANDIDATE,
                     {"error_code": f"E{IMG}", "raw_ocr_output": f"raw two {FORM}"})
    return store, tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def reports(hostile):
    """The reports that show records, run as `ocrlab report` runs them."""
    store, root = hostile
    out = root / "reports"
    jobs = {"failure_patterns": {"table": store.table},
            "compare_versions": {"table": store.table, "base": BASE.full_version, "candidate": CANDIDATE.full_version},
            "explore_failures": {"table": store.table},
            "export_failures": {"table": store.table, "export": "true", "output_dir": str(root / "csv")}}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(lambda n: run_report(n, jobs[n], reports_dir=out,
                                                               notebooks_dir=REPO / "notebooks"), jobs)))
    return results, out


@pytest.mark.parametrize("name", ["failure_patterns", "compare_versions", "explore_failures", "export_failures"])
def test_reports_and_their_notebooks_hold_no_live_markup(reports, name):
    """The HTML report, and the executed notebook's HTML outputs (what JupyterLab renders live in a
    trusted notebook)."""
    results, _ = reports
    result = results[name]
    assert_inert(f"{name} report", result.html_path.read_text(encoding="utf-8"))
    nb = nbformat.read(result.ipynb_path, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = "\n".join("".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {}))
    assert live_markup(html) == [], f"{name} notebook outputs"


def test_comparison_page_and_its_list_pages_hold_no_live_markup(reports, hostile, tmp_path):
    from ocrlab.analysis.compare import compare_versions
    results, out = reports
    written = [p for p in out.glob("comparison-*.html")]
    assert written
    store, _ = hostile
    page = render_comparison_html(compare_versions(store, BASE.full_version, CANDIDATE.full_version, shown=0),
                                  tmp_path / "c.html", lines=1)
    pages = comparison_files(page)
    assert len(pages) > 1  # list pages too
    for path in [*written, *pages]:
        assert_inert(path.name, path.read_text(encoding="utf-8"))


def test_browser_and_export_panel_hold_no_live_markup(hostile, tmp_path):
    from ocrlab.widgets import export_panel, failure_browser
    store, _ = hostile
    browser = failure_browser(store, output_dir=tmp_path)
    browser.select(0, 1)
    browser.export_button.click()
    # The list's rows are option labels, which the widget's front end sets as text, never as HTML.
    parts = {"page": browser.html, "status": browser.status.value, "export": browser.action_output.value}
    for record in browser.page.records:  # each failure as the browser shows it, repairs and all
        parts[f"detail of {record['FailureTimestamp']}"] = browser.open(record) and browser.detail_html.value
    assert any(browser.open(r).repairs for r in browser.page.records)
    for name, html in parts.items():
        assert live_markup(html) == [], name
        if name == "page" or name.startswith("detail"):
            assert_inert(name, html)
    panel = export_panel(store, tmp_path)
    panel.click()
    assert panel.last_count == 3
    assert_inert("export panel", panel.html)
