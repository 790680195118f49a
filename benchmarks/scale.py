"""Analysis at scale: the comparison, its notebook, the failure-patterns notebook and the export panel on a
table of 50,000 failures and 50,000 results over three versions, with 20,000 images changed between the
last two (benchmarks.history, written with batch writes in the store's layout).

    python -m benchmarks.run --only scale_compare scale_compare_report scale_patterns scale_export

Each figure is a ratio against a baseline measured in the same run (medians of alternating runs): a raw
boto3 Query of what the step must read at least, or the command the step is held to. Commands run as
their own processes (`python -m ocrlab ...`), measured by benchmarks.processes: wall time and the peak
resident memory of the command and of the notebook kernel it starts.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .history import V2, V3, Plan, seed_history
from .processes import Run, run_measured

TABLE = "bench-scale"


@lru_cache(maxsize=1)
def seeded(divisor: int = 1) -> dict[str, Any]:
    """The table, seeded once per process (about 80 s at full size); what was written."""
    from benchmarks.seed import unsharded_store
    plan = Plan().scaled(divisor) if divisor > 1 else Plan()
    started = time.perf_counter()
    counts = seed_history(unsharded_store(TABLE), plan)  # today's layout, as measured before the shards
    return {"failures": counts["FAILED_IMAGE"], "results": counts["OCR_RESULT"], "changed_images": plan.changed,
            "regressed": plan.regressed, "fixed": plan.fixed, "seed_seconds": round(time.perf_counter() - started, 1)}


def _client() -> Any:
    from ocrlab.store import open_store
    return open_store(TABLE, create=False).store.client


def raw_query(client: Any, **arguments: Any) -> int:
    """Every page of one Query, items left in wire format: the least any reader of them pays."""
    arguments["TableName"], items = TABLE, 0
    while True:
        page = client.query(**arguments)
        items += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _index_of_version(client: Any, version: str) -> int:
    return raw_query(client, IndexName="ByVersionImage", KeyConditionExpression="#v = :v",
                     ExpressionAttributeNames={"#v": "OCRFullVersion"}, ExpressionAttributeValues={":v": {"S": version}})


def _records(client: Any, record_type: str, attributes: list[str]) -> int:
    wanted = list(dict.fromkeys(["ImageKey", "FailureTimestamp", *attributes]))
    names = {f"#a{n}": a for n, a in enumerate(wanted)}
    return raw_query(client, IndexName="ByRecordType", KeyConditionExpression="#p = :p",
                     ProjectionExpression=", ".join(names), ExpressionAttributeNames={"#p": "RecordType", **names},
                     ExpressionAttributeValues={":p": {"S": record_type}})


def _alternate(runs: int, *steps: Callable[[], Any]) -> list[list[Any]]:
    """Each step `runs` times, taking turns (so load from elsewhere falls on all of them alike)."""
    out: list[list[Any]] = [[] for _ in steps]
    for _ in range(runs):
        for n, step in enumerate(steps):
            out[n].append(step())
    return out


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _ocrlab(*args: str) -> Run:
    run = run_measured([sys.executable, "-m", "ocrlab", *args, "--table", TABLE])
    if run.returncode:
        raise RuntimeError(f"ocrlab {' '.join(args)} failed: {run.output[-2000:]}")
    return run


def _median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def _mb(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 2)


def bench_compare(runs: int = 3, divisor: int = 1) -> dict[str, Any]:
    """`ocrlab compare` (page and JSON) over a raw Query of both versions' ByVersionImage index."""
    from ocrlab.reports.comparison import comparison_files
    table = seeded(divisor)
    client, out = _client(), Path(tempfile.mkdtemp(prefix="bench-compare-"))

    def raw() -> float:
        return _timed(lambda: [_index_of_version(client, v) for v in (V2, V3)])

    def command() -> Run:
        return _ocrlab("compare", "--base", V2, "--candidate", V3, "-o", str(out / "compare.html"),
                       "--json", str(out / "compare.json"))
    raws, commands = _alternate(runs, raw, command)
    run, raw_s = _median_run(commands), statistics.median(raws)
    pages = comparison_files(out / "compare.html")
    ratio, page_mb, peak = run.seconds / raw_s, _mb(pages[0]), run.peak_mb["command"]
    return {"table": table, "raw_query_seconds": round(raw_s, 2), "compare_seconds": round(run.seconds, 2),
            "compare_over_raw": round(ratio, 2), "page_mb": page_mb, "list_pages": len(pages) - 1,
            "list_pages_mb": round(sum(p.stat().st_size for p in pages[1:]) / 1e6, 2),
            "json_mb": _mb(out / "compare.json"), "peak_mb": peak,
            "summary": next(line for line in run.output.splitlines() if " -> " in line),
            "target": "compare_over_raw <= 3, page_mb <= 5, peak_mb <= 250",
            "met": ratio <= 3 and page_mb <= 5 and peak <= 250}


def bench_compare_report(divisor: int = 1) -> dict[str, Any]:
    """`ocrlab report compare_versions`: every byte it writes over the comparison's own pages; peak memory."""
    from ocrlab.reports.comparison import comparison_files
    table = seeded(divisor)
    out = Path(tempfile.mkdtemp(prefix="bench-compare-report-"))
    run = _ocrlab("report", "compare_versions", "-p", "base", V2, "-p", "candidate", V3,
                  "-p", "reports_dir", str(out / "pages"), "--reports-dir", str(out / "notebook"))
    pages = comparison_files(next((out / "pages").glob("comparison-*Z.html")))
    comparison = sum(p.stat().st_size for p in pages)
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    notebook = {p.suffix: _mb(p) for p in (out / "notebook").iterdir()}
    peak = max(run.peak_mb.values())
    return {"table": table, "seconds": round(run.seconds, 2), "written_mb": round(written / 1e6, 2),
            "comparison_mb": round(comparison / 1e6, 2), "comparison_page_mb": _mb(pages[0]),
            "notebook_ipynb_mb": notebook.get(".ipynb"), "notebook_html_mb": notebook.get(".html"),
            "written_over_comparison": round(written / comparison, 3), "peak_mb": run.peak_mb,
            "target": "written_over_comparison <= 2, peak_mb <= 400 (every process)",
            "met": written / comparison <= 2 and peak <= 400}


def _read_cell_seconds(executed: Path) -> float:
    """How long the notebook's reading cell took (papermill times each cell)."""
    import nbformat
    cells = nbformat.read(executed, as_version=4).cells
    return next(c.metadata.papermill["duration"] for c in cells if "pattern_frames(" in c.source)


def bench_patterns(runs: int = 3, divisor: int = 1) -> dict[str, Any]:
    """`ocrlab report failure_patterns` over a raw Query of every record with the same projection; and the
    part of it that does not grow with the table (the same report on an empty table: starting the report,
    its kernel and imports, drawing empty charts, writing the HTML), and its reading cell alone."""
    from benchmarks.seed import unsharded_store
    from ocrlab.analysis.patterns import PATTERN_COLUMNS, USAGE_COLUMNS
    table = seeded(divisor)
    client, out = _client(), Path(tempfile.mkdtemp(prefix="bench-patterns-"))
    unsharded_store(f"{TABLE}-empty")

    def raw() -> float:
        return _timed(lambda: (_records(client, "FAILED_IMAGE", PATTERN_COLUMNS),
                               _records(client, "OCR_RESULT", USAGE_COLUMNS)))

    def report() -> Run:
        return _ocrlab("report", "failure_patterns", "--reports-dir", str(out))
    raws, reports = _alternate(runs, raw, report)
    run, raw_s = _median_run(reports), statistics.median(raws)
    empty = _median_run([run_measured([sys.executable, "-m", "ocrlab", "report", "failure_patterns", "--table",
                                       f"{TABLE}-empty", "--reports-dir", str(out / "empty")]) for _ in range(runs)])
    kernel = run.peak_mb.get("kernel", 0.0)
    ratio = run.seconds / raw_s
    executed = sorted(out.glob("*.ipynb"))
    read_s = statistics.median(_read_cell_seconds(p) for p in executed)
    html = max(out.glob("*.html"), key=lambda p: p.stat().st_mtime)
    return {"table": table, "raw_query_seconds": round(raw_s, 2), "report_seconds": round(run.seconds, 2),
            "report_over_raw": round(ratio, 2), "kernel_peak_mb": kernel, "peak_mb": run.peak_mb,
            "empty_table_report_seconds": round(empty.seconds, 2), "read_cell_seconds": round(read_s, 2),
            "read_cell_over_raw": round(read_s / raw_s, 2),
            "html_mb": _mb(html), "charts": html.read_text(encoding="utf-8").count("data:image/png;base64"),
            "target": "report_over_raw <= 2, kernel_peak_mb <= 250", "met": ratio <= 2 and kernel <= 250}


def bench_export(runs: int = 3, divisor: int = 1) -> dict[str, Any]:
    """The export panel's click over what `ocrlab export` runs (export_failed_images_csv), same rows,
    same process; and how much the panel puts into widget state."""
    import json

    from ocrlab.store import open_store
    from ocrlab.store.failure_log import export_failed_images_csv
    from ocrlab.widgets.export import export_panel
    table = seeded(divisor)
    store, out = open_store(TABLE, create=False), Path(tempfile.mkdtemp(prefix="bench-export-"))
    panel = export_panel(store, out / "panel")

    def export() -> float:
        path = out / "export.csv"
        seconds = _timed(lambda: export_failed_images_csv(store, path))
        path.unlink()
        return seconds

    def click() -> float:
        seconds = _timed(panel.click)
        assert panel.last_error is None, panel.last_error
        panel.last_csv_path.unlink()
        return seconds
    exports, clicks = _alternate(runs, export, click)
    export_s, click_s = statistics.median(exports), statistics.median(clicks)
    state = sum(len(json.dumps(w.get_state(), default=str)) for w in (panel.widget, *panel.widget.children))
    return {"table": table, "rows": panel.last_count, "export_seconds": round(export_s, 2),
            "click_seconds": round(click_s, 2), "click_over_export": round(click_s / export_s, 3),
            "widget_state_kb": round(state / 1024, 1), "target": "click_over_export <= 1.15, widget state < 300 KB",
            "met": click_s / export_s <= 1.15 and state < 300 * 1024}
