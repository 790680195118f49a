"""The export panel (the seed's "Export Failed Images" button) against a real dynalite table."""
from __future__ import annotations

import base64
import csv
import os
import re
import uuid

import pytest
from support.helpers import free_port

from ocrlab.store.export import COLUMNS, EXTRA_COLUMNS
from ocrlab.store.failure_log import log_failed_image
from ocrlab.widgets.export import ExportPanel, export_panel

SCRIPT = "<script>alert('x')</script>"


def test_no_failures(store, tmp_path):
    panel = export_panel(store, tmp_path)
    assert isinstance(panel, ExportPanel) and panel.button.description == "Export failed images"
    panel.click()
    assert "No failed images" in panel.message.value
    assert panel.last_stats["total_failures"] == 0 and panel.last_csv_path is None
    assert panel.download_html.value == "" and list(tmp_path.iterdir()) == []


def test_export_shows_stats_breakdown_and_offers_csv(store, tmp_path):
    details = {"error_code": "ValidationException", "raw_ocr_output": SCRIPT}
    log_failed_image(store, f"scans/{SCRIPT}.png", "OCR_ERROR", f"model said {SCRIPT}", error_details=details)
    log_failed_image(store, f"scans/{SCRIPT}.png", "OCR_ERROR", "timeout", error_details={"error_code": "ReadTimeout"})
    log_failed_image(store, "scans/b.png", "PARSING_ERROR", "=HYPERLINK(\"x\")", error_details={"error_code": "E"})
    panel = export_panel(store, tmp_path / "out")
    panel.button.click()  # the button itself, as a browser click

    assert panel.last_error is None, panel.message.value
    assert "Exported 3 failed image records" in panel.message.value
    stats = panel.last_stats
    assert (stats["total_failures"], stats["unique_images"], stats["recent_failures_24h"]) == (3, 2, 3)
    assert re.search(r"<b>3</b> failures .*<b>2</b> unique images .*<b>3</b> in the last 24 h",
                     panel.stats_html.value, re.S)
    breakdown = panel.breakdown_html.value
    assert re.search(r"OCR_ERROR</td><td[^>]*>2</td>", breakdown) and "PARSING_ERROR" in breakdown
    assert "66.7%" in breakdown and "33.3%" in breakdown
    assert panel.recent_html.value.count("<tr>") == 4  # the header and three failures

    # Every text that came from the store is escaped wherever the panel shows it.
    assert "<script>" not in panel.html and "&lt;script&gt;" in panel.recent_html.value

    path = panel.last_csv_path
    assert path.parent == tmp_path / "out" and re.fullmatch(r"failed_images_\d{8}_\d{6}\.csv", path.name)
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    assert rows[0] == COLUMNS + EXTRA_COLUMNS and len(rows) == 4 and panel.last_count == 3
    assert {r[0] for r in rows[1:]} == {f"scans/{SCRIPT}.png", "scans/b.png"}
    assert "'=HYPERLINK(\"x\")" in {r[3] for r in rows[1:]}  # formula neutralised

    link = re.search(r'<a download="([^"]+)" href="data:text/csv;base64,([^"]+)"', panel.download_html.value)
    assert link and link.group(1) == path.name
    assert base64.b64decode(link.group(2)) == path.read_bytes()

    panel.click()  # a second export in the same second keeps the first file
    assert panel.last_csv_path != path and len(list((tmp_path / "out").iterdir())) == 2


def test_unreachable_store_is_one_line(tmp_path):
    from ocrlab.config import StoreTarget
    from ocrlab.store import Spool, SpoolingStore, Store
    from ocrlab.store.dynamodb import make_client
    target = StoreTarget("aws", f"http://127.0.0.1:{free_port()}", "us-east-1", tmp_path)
    name = f"t-{uuid.uuid4().hex[:12]}"
    unreachable = SpoolingStore(Store(make_client(target, max_attempts=1), name, target.describe(name)),
                                Spool(tmp_path, name))
    panel = export_panel(unreachable, tmp_path)
    panel.click()
    assert panel.message.value.count("\n") == 0 and "Traceback" not in panel.message.value
    assert "Export failed: cannot reach the store" in panel.message.value
    assert panel.last_csv_path is None and not panel.button.disabled
    assert "ocrlab-stats" not in panel.html


def test_panel_displays_as_a_widget(store, tmp_path):
    panel = export_panel(store, tmp_path)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert panel.widget.children[0] is panel.button


@pytest.fixture(autouse=True)
def _no_traceback_printed(capsys):
    yield
    assert "Traceback" not in capsys.readouterr().err


def test_a_large_table_is_read_once_and_kept_out_of_widget_state(store, tmp_path, monkeypatch):
    """3,000 failures (a CSV far beyond the inline limit): one pass over the log, statistics from it, and
    the file offered through the Jupyter server that runs the kernel, never inside the widgets."""
    import json

    from benchmarks.seed import seed_failures
    from ocrlab.reports import links
    from ocrlab.widgets import export as widgets
    seed_failures(store, 3000)
    items: list[int] = []
    store.store.client.meta.events.register("after-call.dynamodb.Query",
                                            lambda parsed, **_: items.append(len(parsed.get("Items", []))))
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-1.json").write_text(json.dumps({"pid": os.getppid(), "base_url": "/user/me/",
                                                         "root_dir": str(tmp_path)}))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    panel = export_panel(store, tmp_path / "reports")
    panel.click()

    assert panel.last_error is None and panel.last_count == 3000 and sum(items) == 3000  # every failure once
    assert panel.last_stats["total_failures"] == 3000 and panel.last_stats["unique_images"] == 3000
    assert panel.recent_html.value.count("<tr>") == 1 + widgets.RECENT_ROWS
    assert "scans/<wbr>2025/<wbr>002999.<wbr>png" in panel.recent_html.value.split("</tr>")[1]  # the newest first
    assert panel.last_csv_path.stat().st_size > 4 * links.INLINE_LIMIT_BYTES
    link = re.search(r'<a download="([^"]+)" href="([^"]+)"', panel.download_html.value)
    assert link.group(2) == f"/user/me/files/reports/{panel.last_csv_path.name}?download=1"
    state = sum(len(json.dumps(w.get_state(), default=str)) for w in (panel.widget, *panel.widget.children))
    assert state < 64 * 1024


def test_a_large_file_outside_any_server_is_not_inlined(store, tmp_path, monkeypatch):
    from benchmarks.seed import seed_failures
    from ocrlab.reports import links
    monkeypatch.setattr(links, "INLINE_LIMIT_BYTES", 1000)
    seed_failures(store, 20)
    panel = export_panel(store, tmp_path)
    panel.click()
    assert "data:" not in panel.download_html.value and "outside the Jupyter server" in panel.download_html.value
    assert str(panel.last_csv_path) in panel.download_html.value
