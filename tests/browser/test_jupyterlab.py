"""JupyterLab in a real browser: the export panel's download and the failure browser, as a person uses them.

JupyterLab runs on a free port with a token, against the session's dynalite holding a seeded table;
Debian's chromium is driven by Playwright. The notebooks are the shipped ones, parameterised the way
papermill does it (an injected cell after the parameters). Every page records what the browser console
logs as an error (a widget's front end failing shows nowhere else). With OCRLAB_SCREENSHOT_DIR set, the
failure browser's screenshot is saved there too (the README's docs/failure-browser.png).
"""
from __future__ import annotations

import csv
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from support.helpers import V1, free_port

from ocrlab.project import init_project
from ocrlab.samples.generate import generate_samples
from ocrlab.store.export import COLUMNS, EXTRA_COLUMNS
from ocrlab.store.failure_log import log_failed_image

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def seeded(dynalite, tmp_path_factory):
    """Three samples; timesheet-001 failed validation twice (one fingerprint), timesheet-003 twice (a model
    error, then a throttle), timesheet-002 once."""
    from ocrlab.store import open_store
    root = tmp_path_factory.mktemp("lab")
    samples = root / "samples"
    generate_samples(samples, count=3)
    store = open_store(f"lab-{secrets.token_hex(5)}")
    read = dict(json.loads((samples / "timesheet-001.json").read_text()), total_hours=99.0)
    for _ in range(2):
        log_failed_image(store, "timesheet-001.png", "VALIDATION_ERROR", "timesheet breaks 1 rule(s)", V1,
                         {"error_code": "ValidationError", "raw_ocr_output": "WEEKLY TIMESHEET\nTotal hours: 99",
                          "validation_errors": ["total_mismatch: entries sum to 16.5 h, total_hours is 99"],
                          "ParsedTimesheet": read})
    log_failed_image(store, "timesheet-002.png", "PARSING_ERROR", "no timesheet text", V1, {"error_code": "NoTimesheet"})
    log_failed_image(store, "timesheet-003.png", "OCR_ERROR", "model error", V1, {"error_code": "ModelErrorException"})
    log_failed_image(store, "timesheet-003.png", "THROTTLING_ERROR", "throttled", V1,
                     {"error_code": "ThrottlingException"})
    return store, samples, root


def _notebook(name: str, folder: Path, **parameters: object) -> str:
    nb = load_notebook_node(str(NOTEBOOKS / f"{name}.ipynb"))  # papermill's reader adds the metadata it needs
    nb = parameterize_notebook(nb, parameters)
    nbformat.write(nb, folder / f"{name}.ipynb")
    return f"{name}.ipynb"


@pytest.fixture(scope="module")
def lab(seeded):
    """JupyterLab on a free port with a token, its settings and workspaces in a scratch folder."""
    store, samples, root = seeded
    work = root / "work"
    work.mkdir()
    _notebook("export_failures", work, table=store.table, output_dir=str(work / "csv"))  # served by JupyterLab
    _notebook("explore_failures", work, table=store.table, source=str(samples), output_dir=str(root / "csv"))
    # Pages of three: a row selected on the first page is past the end of the second.
    (work / "paged").mkdir()
    _notebook("explore_failures", work / "paged", table=store.table, source=str(samples),
              output_dir=str(work / "csv"), page_size=3)
    init_project(work / "untouched")  # the notebooks as a new project has them: untouched
    (work / "candidate.txt").write_text("version: 2.2.0\nbuild_date: 2025-11-10\ndescription: re-run\n")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces")}
    log = (root / "jupyterlab.log").open("w")  # a pipe nobody reads would fill and stall the server
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=", "--ServerApp.port_retries=0"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield base, token, store, root
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def _open(chromium, lab, name: str, viewport: dict | None = None):
    """A notebook opened in JupyterLab with its kernel ready; console errors collected on `page.errors`."""
    base, token, _, _ = lab
    context = chromium.new_context(viewport=viewport or {"width": 1400, "height": 2200}, accept_downloads=True)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')")
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    try:  # JupyterLab may ask which kernel to start for a notebook it has not seen
        select.click(timeout=10_000)
    except PlaywrightTimeout:
        pass
    # The kernel must be ready before Run All, or the cells queue behind its start.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
    return context, page


def _open_and_run(chromium, lab, name: str, viewport: dict | None = None):
    context, page = _open(chromium, lab, name, viewport)
    # Not awaited: the command's promise settles only when every cell has run.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    return context, page


def _options(page) -> str:
    return "document.querySelectorAll('.ocrlab-failure-list select option')"


def _errors(page) -> list[str]:
    """Console errors other than the server's answers about things it does not have (a missing favicon,
    the news feed), which have nothing to do with the notebook."""
    return [e for e in page.errors if "Failed to load resource" not in e]


def test_export_panel_download_is_the_csv_of_the_seeded_failures(chromium, lab):
    _, _, store, _ = lab
    context, page = _open_and_run(chromium, lab, "export_failures.ipynb")
    try:
        page.get_by_role("button", name="Export failed images").click()
        link = page.locator("a.ocrlab-download")
        link.wait_for()
        assert link.get_attribute("href").startswith("/files/csv/failed_images_")  # the server's own download
        with page.expect_download() as download:
            link.click()
        path = download.value.path()
        rows = list(csv.reader(Path(path).open(encoding="utf-8", newline="")))
        assert rows[0] == COLUMNS + EXTRA_COLUMNS
        assert sorted(r[0] for r in rows[1:]) == ["timesheet-001.png", "timesheet-001.png", "timesheet-002.png",
                                                  "timesheet-003.png", "timesheet-003.png"]
        assert download.value.suggested_filename.startswith("failed_images_")
    finally:
        context.close()


def test_failure_browser_filters_by_fingerprint_shows_a_failure_and_fits_the_cell(chromium, lab, tmp_path):
    _, _, store, _ = lab
    fingerprint = next(r["FailureFingerprint"] for r in store.records_by_type() if r["ImageKey"] == "timesheet-001.png")
    context, page = _open_and_run(chromium, lab, "explore_failures.ipynb")
    try:
        browser = page.locator(".ocrlab-browser").first
        listing = browser.locator(".ocrlab-failure-list select")
        listing.wait_for()
        page.wait_for_function("document.querySelectorAll('.ocrlab-failure-list select option').length === 5")
        page.get_by_placeholder("16 hex digits").fill(fingerprint)
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_function("document.querySelectorAll('.ocrlab-failure-list select option').length === 2")
        listing.select_option(index=0)
        image = browser.locator("img.scan")
        image.wait_for()
        assert image.get_attribute("src").startswith("data:image/jpeg;base64,")
        assert "Total hours: 99" in browser.locator("pre.raw").inner_text()
        rule = browser.locator("tr.broken .rule")
        assert rule.first.inner_text() == "total_mismatch"
        assert "total_hours" in browser.locator("tr.broken").first.inner_text()
        # Nothing reaches past the cell's right edge, the fields and the ground truth open: in a window
        # where the image sits beside the fields and in one where they stack.
        for width in (1350, 1000):
            page.set_viewport_size({"width": width, "height": 1600})
            # JupyterLab lays its panels out again on the next frames after a resize.
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            overflow = page.evaluate("""() => {
                const browser = document.querySelector('.ocrlab-browser');
                const edge = browser.closest('.jp-OutputArea-output').getBoundingClientRect().right;
                return [...browser.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > edge + 1
                    && e.getClientRects().length).map(e => e.className || e.tagName).slice(0, 5);
            }""")
            assert overflow == [], width
        assert _errors(page) == []
        shots = [tmp_path / "failure-browser.png"]
        if os.environ.get("OCRLAB_SCREENSHOT_DIR"):
            shots.append(Path(os.environ["OCRLAB_SCREENSHOT_DIR"]) / "failure-browser.png")
        news = page.get_by_role("button", name="No", exact=True)
        if news.count():
            news.click()  # JupyterLab's question about news, not part of the picture
        page.add_style_tag(content=".Toastify { display: none !important; }")  # JupyterLab's own notices
        page.set_viewport_size({"width": 1400, "height": 1350})
        browser.evaluate("element => element.scrollIntoView({block: 'start'})")
        # What the window shows of the browser (below it the notebook scrolls, out of the picture).
        box = browser.bounding_box()
        height = min(box["height"], page.viewport_size["height"] - 40 - box["y"])  # above the status bar
        for shot in shots:
            page.screenshot(path=str(shot), clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": height})
        assert shots[0].stat().st_size > 10_000
    finally:
        context.close()


def test_opening_a_notebook_leaves_it_unmodified(chromium, lab):
    """A notebook as `ocrlab init` copies it opens clean: its kernel's name and metadata are what JupyterLab
    writes as the kernel starts, so nothing asks to be saved before anything ran (every notebook carries
    the same metadata: tests/test_notebook_kernel.py)."""
    context, page = _open(chromium, lab, "untouched/notebooks/explore_failures.ipynb")
    try:
        page.wait_for_function("window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.info")
        dirty = page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
        assert dirty is False
        assert page.locator(".jp-mod-dirty").count() == 0
    finally:
        context.close()


def test_failure_browser_selection_across_pages_export_and_rerun(chromium, lab):
    """Filter, page, select on two pages, Export (the download holds exactly the selected rows), Re-run:
    no error in the console, and what an action showed goes with the page it was done on."""
    _, _, store, root = lab
    context, page = _open_and_run(chromium, lab, "paged/explore_failures.ipynb", {"width": 1100, "height": 1600})
    try:
        browser = page.locator(".ocrlab-browser").first
        listing = browser.locator(".ocrlab-failure-list select")
        listing.wait_for()
        page.wait_for_function(f"{_options(page)}.length === 3")
        page.get_by_placeholder("in key, message, rules, raw output").fill("timesheet")
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_function("[...document.querySelectorAll('.ocrlab-browser .widget-html-content')]"
                               ".some(e => e.textContent.includes('examined'))")
        first_page = listing.locator("option").all_inner_texts()
        listing.select_option(index=2)  # the last row of a full page
        browser.locator("img.scan").wait_for()
        page.get_by_role("button", name="Next ▶").click()
        page.wait_for_function(f"{_options(page)}.length === 2")
        second_page = listing.locator("option").all_inner_texts()
        assert not set(first_page) & set(second_page)
        listing.select_option(index=0)
        browser.locator("b", has_text="2 selected").wait_for()
        chosen = [first_page[2], second_page[0]]

        page.get_by_role("button", name="Export 2 selected (CSV)").click()
        link = browser.locator("a.ocrlab-download")
        link.wait_for()
        assert link.get_attribute("href").startswith("/files/csv/failures_")  # the server's own download
        with page.expect_download() as download:
            link.click()
        rows = list(csv.DictReader(Path(download.value.path()).open(encoding="utf-8", newline="")))
        # A row's label ends with the attempt and the image key: `... #2  timesheet-001.png`.
        labels = sorted(tuple(re.search(r"#(\d+)\s+(\S+)$", line.replace("\xa0", " ")).groups()) for line in chosen)
        assert sorted((r["AttemptNumber"], r["ImageKey"]) for r in rows) == labels

        page.get_by_role("button", name="Previous").click()  # the selection is still there on the first page
        page.wait_for_function(f"{_options(page)}.length === 3")
        # The selection comes in an update of its own, after the list's: waited for, then checked.
        page.wait_for_function("document.querySelector('.ocrlab-failure-list select option:checked') !== null")
        assert page.locator(".ocrlab-failure-list select option:checked").all_inner_texts() == [first_page[2]]
        # The export belonged to the other page: its link goes (an update of its own, after the list's).
        browser.locator("a.ocrlab-download").wait_for(state="hidden", timeout=15_000)
        assert browser.locator("a.ocrlab-download").count() == 0

        page.get_by_placeholder("OCR_VERSION.txt of the candidate").fill(str(root / "work" / "candidate.txt"))
        page.get_by_role("button", name="Re-run 2 selected under the candidate").click()
        result = browser.get_by_text("of the 2 selected images under")
        result.wait_for(timeout=180_000)
        assert "2.2.0-2025-11-10" in result.inner_text()
        page.get_by_role("button", name="Next ▶").click()
        page.wait_for_function(f"{_options(page)}.length === 2")
        assert result.count() == 0  # a result stays with the page that produced it

        page.get_by_role("button", name="Clear selection").click()
        page.wait_for_function("document.querySelectorAll('.ocrlab-failure-list select option:checked').length === 0")
        assert _errors(page) == []
    finally:
        context.close()
