"""The failure browser: filter the failure log, page through it, open one failure, act on a selection.

Every list is a server-side page (`SpoolingStore.failures_page`): the browser never loads the log,
so it opens as fast on 50,000 failures as on 50. Time order (newest or oldest first) is the
index's own order; the other orders sort the page shown. The selection is of failures, not rows: it
holds across pages (new filters clear it), and the failure last selected opens below the list
(`ocrlab.analysis.failure_detail`). "Export" writes the selection, or every failure the filters match, as CSV
and offers it for download as the export panel does; "Re-run" runs a batch on exactly the selected
images under a candidate configuration and shows its comparison with the version they failed under.
What an action shows stays until the page or the filters change.

Displayed, the browser is a widget; in a report (no widget manager) it falls back to static HTML:
the page and the failure shown, through the same autoescaping templates.
"""
from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, cast

from markupsafe import Markup

from ocrlab.analysis.failure_detail import FailureDetail, failure_detail
from ocrlab.config import in_project
from ocrlab.domain import Record
from ocrlab.errors import FailureType, MissingDependency, OcrlabError
from ocrlab.files import unique_path
from ocrlab.image_lookup import default_sources, image_folders, locate
from ocrlab.records import format_timestamp, parse_timestamp
from ocrlab.reports.links import download_html
from ocrlab.reports.notebooks import default_reports_dir
from ocrlab.reports.render import environment, render
from ocrlab.store.export import write_csv
from ocrlab.store.queries import Cursor, FailurePage, FailureQuery
from ocrlab.store.spooling import SpoolingStore

try:
    import ipywidgets as widgets
except ImportError as exc:  # pragma: no cover - ipywidgets is in the notebooks extra
    raise MissingDependency("ipywidgets", "notebooks") from exc

PAGE_SIZE = 25
ANY = ""
# Orders of the page shown (time order is the index's; the others sort the page in hand).
PAGE_ORDERS: dict[str, Callable[[Record], Any]] = {
    "image key (this page)": lambda r: r["ImageKey"],
    "failure type (this page)": lambda r: (r.get("FailureType", ""), r["ImageKey"]),
    "error code (this page)": lambda r: (r.get("ErrorCode", ""), r["ImageKey"]),
    "attempt (this page)": lambda r: (-int(r.get("AttemptNumber") or 0), r["ImageKey"]),
}
TIME_ORDERS = {"newest first": True, "oldest first": False}


def parse_bound(text: str, end: bool) -> str | None:
    """A date (`2025-10-24`) or an ISO-8601 time as a stored timestamp; a date's end is its last microsecond."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise OcrlabError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO-8601 time") from None
    if end and len(text) <= 10:
        moment += dt.timedelta(days=1, microseconds=-1)
    return format_timestamp(moment)


def record_id(record: Record) -> str:
    """A failure's identity across pages: its image and time (the table's key)."""
    return f"{record['ImageKey']}\x00{record.get('FailureTimestamp', '')}"


def _row_label(record: Record) -> str:
    """One line of the list: fixed-width columns so the rows align in a monospace font."""
    when = str(record.get("FailureTimestamp", ""))[:19].replace("T", " ")
    return (f"{when}  {str(record.get('FailureType', '')):<16.16}  {str(record.get('ErrorCode', '')):<22.22}  "
            f"#{int(record.get('AttemptNumber') or 0):<3d} {record['ImageKey']}")


class FailureBrowser:
    """Filters, a page of failures, the failure shown, and the actions on a selection."""

    def __init__(self, store: SpoolingStore, sources: Sequence[str | os.PathLike[str]] = (),
                 output_dir: str | os.PathLike[str] | None = None, page_size: int = PAGE_SIZE,
                 query: FailureQuery | None = None) -> None:
        self.store = store
        # Relative folders are the project folder's, from any kernel; S3 images come from their records.
        self.sources = [str(s) if str(s).startswith("s3://") else str(in_project(s)) for s in sources if str(s)]
        self.output_dir = in_project(output_dir) or default_reports_dir()
        self.page_size = page_size
        self.query = query or FailureQuery()
        self.page: FailurePage | None = None
        self.detail: FailureDetail | None = None
        self._cursors: list[Cursor | None] = [None]  # where each page visited so far starts
        self._records: list[Record] = []
        self._chosen: dict[str, Record] = {}  # the selection, every page's, in the order it was made
        self._syncing = False  # the list is being set to the selection, not clicked
        self.last_export: Path | None = None
        self.last_comparison: Any = None
        self._build()
        self.refresh()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        text = lambda name, hint: widgets.Text(description=name, placeholder=hint,  # noqa: E731
                                               layout=widgets.Layout(width="260px", max_width="100%"))
        self.type_filter = widgets.Dropdown(description="type", options=[("any", ANY)] + [
            (t.value, t.value) for t in FailureType], layout=widgets.Layout(width="260px"))
        self.version_filter = widgets.Dropdown(description="version", layout=widgets.Layout(width="260px"))
        self.code_filter = text("error code", "e.g. ValidationError")
        self.fingerprint_filter = text("fingerprint", "16 hex digits")
        self.since_filter = text("since", "YYYY-MM-DD or ISO time (UTC)")
        self.until_filter = text("until", "YYYY-MM-DD or ISO time (UTC)")
        self.search = text("search", "in key, message, rules, raw output")
        self.order = widgets.Dropdown(description="order", options=[*TIME_ORDERS, *PAGE_ORDERS],
                                      layout=widgets.Layout(width="260px"))
        self.apply_button = widgets.Button(description="Apply filters", button_style="primary")
        self.clear_button = widgets.Button(description="Clear")
        self.list = widgets.SelectMultiple(rows=min(self.page_size, 15),
                                           layout=widgets.Layout(width="auto", max_width="100%"))
        self.list.add_class("ocrlab-failure-list")
        self.previous_button = widgets.Button(description="◀ Previous", layout=widgets.Layout(width="auto"))
        self.next_button = widgets.Button(description="Next ▶", layout=widgets.Layout(width="auto"))
        self.status = widgets.HTML()
        self.clear_selection_button = widgets.Button(description="Clear selection", layout=widgets.Layout(width="auto"),
                                                     disabled=True)
        self.fingerprint_button = widgets.Button(description="All failures with this fingerprint",
                                                 layout=widgets.Layout(width="auto"), disabled=True)
        self.image_button = widgets.Button(description="All failures of this image",
                                           layout=widgets.Layout(width="auto"), disabled=True)
        self.export_button = widgets.Button(description="Export these (CSV)", icon="download",
                                            layout=widgets.Layout(width="auto"))
        self.candidate_file = text("candidate", "OCR_VERSION.txt of the candidate")
        self.engine = widgets.Dropdown(description="engine", options=["rapidocr", "tesseract", "bedrock"],
                                       layout=widgets.Layout(width="260px"))
        self.preprocess = text("preprocess", '{"contrast": true}')
        self.rerun_button = widgets.Button(description="Re-run these under the candidate",
                                           layout=widgets.Layout(width="auto"))
        self.action_output = widgets.HTML()
        self.detail_html = widgets.HTML()

        self.apply_button.on_click(lambda _: self.apply())
        self.clear_button.on_click(lambda _: self.clear())
        self.clear_selection_button.on_click(lambda _: self.clear_selection())
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.fingerprint_button.on_click(lambda _: self.show_fingerprint())
        self.image_button.on_click(lambda _: self.show_image())
        self.export_button.on_click(lambda _: self._guarded(self.export))
        self.rerun_button.on_click(lambda _: self._guarded(self.rerun))
        self.list.observe(lambda change: self._clicked(change["new"]), names="value")
        self.order.observe(lambda change: self._reorder(change["old"], change["new"]), names="value")

        style = widgets.HTML(environment().get_template("_browser_style.html.j2").render())
        grid = widgets.GridBox([self.type_filter, self.version_filter, self.code_filter, self.fingerprint_filter,
                                self.since_filter, self.until_filter, self.search, self.order],
                               layout=widgets.Layout(grid_template_columns="repeat(auto-fill, minmax(270px, 1fr))"))
        row = lambda *children: widgets.HBox(list(children), layout=widgets.Layout(  # noqa: E731
            flex_flow="row wrap", align_items="center", max_width="100%"))
        self.widget = widgets.VBox([
            style, grid, row(self.apply_button, self.clear_button),
            self.list, row(self.previous_button, self.next_button, self.clear_selection_button, self.status),
            row(self.fingerprint_button, self.image_button),
            row(self.export_button),
            row(self.candidate_file, self.engine, self.preprocess, self.rerun_button),
            self.action_output, self.detail_html], layout=widgets.Layout(max_width="100%"))
        self.widget.add_class("ocrlab-browser")
        self._load_versions()

    def _load_versions(self) -> None:
        chosen = self.version_filter.value or ANY
        self.version_filter.options = [("any", ANY)] + [(v, v) for v in reversed(self.store.versions())]
        self.version_filter.value = chosen if chosen in {v for _, v in self.version_filter.options} else ANY

    # -- filters and pages ----------------------------------------------------------------------
    def _form_query(self) -> FailureQuery:
        return FailureQuery(failure_type=self.type_filter.value or None,
                            ocr_version=self.version_filter.value or None,
                            error_code=self.code_filter.value.strip() or None,
                            fingerprint=self.fingerprint_filter.value.strip() or None,
                            since=parse_bound(self.since_filter.value, end=False),
                            until=parse_bound(self.until_filter.value, end=True),
                            text=self.search.value.strip() or None,
                            newest_first=TIME_ORDERS.get(self.order.value, self.query.newest_first))

    def _show_query(self, query: FailureQuery) -> None:
        """Put a query into the form (the detail's buttons set filters this way)."""
        self.type_filter.value = query.failure_type or ANY
        if query.ocr_version and query.ocr_version not in self.version_filter.options:
            self._load_versions()
        self.version_filter.value = query.ocr_version or ANY
        self.code_filter.value = query.error_code or ""
        self.fingerprint_filter.value = query.fingerprint or ""
        self.since_filter.value, self.until_filter.value = query.since or "", query.until or ""
        self.search.value = query.text or ""

    def apply(self) -> None:
        """Read the filters and show their first page."""
        try:
            self.query = self._form_query()
        except OcrlabError as exc:
            self.status.value = render_inline('<span class="error">{{ e }}</span>', e=str(exc))
            return
        self._cursors = [None]
        self._chosen.clear()  # new filters: a new list, chosen from afresh
        self.refresh()

    def clear(self) -> None:
        self.set_query(FailureQuery(newest_first=self.query.newest_first))

    def set_query(self, query: FailureQuery) -> None:
        """Show the first page of `query` (and put it into the form)."""
        self._show_query(query)
        self.query = query
        self._cursors = [None]
        self._chosen.clear()
        self.refresh()

    def refresh(self) -> None:
        """Read the current page again."""
        try:
            self.page = self.store.failures_page(self.query, self.page_size, self._cursors[-1])
        except OcrlabError as exc:
            self.page = None
            self._show_page([])
            self.status.value = render_inline('<span class="error">{{ e }}</span>', e=str(exc))
            return
        records = list(self.page.records)
        key = PAGE_ORDERS.get(self.order.value)
        if key is not None:
            records.sort(key=key)
        self._show_page(records)
        self.action_output.value = ""  # what an action showed belongs to the page it was done on
        self.previous_button.disabled = len(self._cursors) == 1
        self.next_button.disabled = self.page.cursor is None
        self._show_status()

    def _show_page(self, records: list[Record]) -> None:
        """Put a page into the list with the selected failures on it selected. The list's selection is
        emptied before its options change: the front end applies a selection to the options it has, and
        a row number past the new page's end is an error there."""
        self._syncing = True
        try:
            self.list.value = ()
            self._records = records
            self.list.options = [(_row_label(r), i) for i, r in enumerate(records)]
            self.list.value = tuple(i for i, r in enumerate(records) if record_id(r) in self._chosen)
        finally:
            self._syncing = False
        self._close()  # a page opens nothing by itself: a failure's detail costs reads of its own
        self._label_actions()

    def _show_status(self) -> None:
        if self.page is None:
            return
        self.status.value = render_inline(
            "page {{ n }} · {{ shown }} shown{% if filtered %} · {{ examined|num }} examined"
            "{% if partial %} (stopped early: Next searches further){% endif %}{% endif %}"
            "{% if chosen %} · <b>{{ chosen|num }} selected</b>{% if elsewhere %} ({{ elsewhere|num }} on other "
            "pages){% endif %}{% endif %}",
            n=len(self._cursors), shown=len(self._records), filtered=self.query.filtered,
            examined=self.page.examined, partial=self.page.partial, chosen=len(self._chosen),
            elsewhere=len(self._chosen) - len(self.list.value))

    def select(self, *indexes: int) -> None:
        """Select rows of the page shown, as clicks in the list do (the first one opens); the failures
        selected on other pages stay selected."""
        self.list.value = tuple(i for i in indexes if i < len(self._records))

    def clear_selection(self) -> None:
        """Unselect every failure, on every page."""
        self._chosen.clear()
        self.list.value = ()
        self._close()
        self._label_actions()
        self._show_status()

    def next(self) -> None:
        if self.page is not None and self.page.cursor is not None:
            self._cursors.append(self.page.cursor)
            self.refresh()

    def previous(self) -> None:
        if len(self._cursors) > 1:
            self._cursors.pop()
            self.refresh()

    def _reorder(self, old: str, new: str) -> None:
        if TIME_ORDERS.get(new, self.query.newest_first) != self.query.newest_first:
            self.query = self.query.with_(newest_first=TIME_ORDERS[new])
            self._cursors = [None]
        self.refresh()

    # -- the failure shown ----------------------------------------------------------------------
    @property
    def selected(self) -> list[Record]:
        """The failures selected, on every page, in the order they were selected."""
        return list(self._chosen.values())

    def _clicked(self, indexes: Sequence[int]) -> None:
        """The page's rows selected now: the selection on this page becomes exactly them; the failure just
        added opens (or, if one was only taken away, the first still selected here)."""
        if self._syncing:
            return
        here = {record_id(r): r for r in self._records}
        now = [self._records[i] for i in indexes if i < len(self._records)]
        added = [r for r in now if record_id(r) not in self._chosen]
        for rid in here:
            self._chosen.pop(rid, None)
        self._chosen.update((record_id(r), r) for r in now)
        self._label_actions()
        self._show_status()
        shown = self.detail.record if self.detail is not None else None
        if added:
            self.open(added[0])
        elif now and (shown is None or record_id(shown) not in self._chosen):
            self.open(now[0])
        elif not now:
            self._close()

    def _close(self) -> None:
        self.detail, self.detail_html.value = None, ""
        self.fingerprint_button.disabled = self.image_button.disabled = True

    def _label_actions(self) -> None:
        n = len(self._chosen)
        self.clear_selection_button.disabled = n == 0
        self.export_button.description = f"Export {n} selected (CSV)" if n > 1 else "Export all matching (CSV)"
        self.rerun_button.description = (f"Re-run {n} selected under the candidate" if n > 1
                                         else "Re-run all on this page under the candidate")

    def open(self, record: Record) -> FailureDetail:
        """Show one failure: image, raw output, parsed fields with the broken rules, history."""
        self.detail = failure_detail(self.store, record, self.sources)
        self.detail_html.value = render("failure_detail.html.j2", d=self.detail)
        self.fingerprint_button.disabled = self.image_button.disabled = False
        return self.detail

    def images_found(self) -> int:
        """How many failures of the page shown have their image where the browser looks (S3 ones not counted)."""
        return sum(1 for r in self._records if not r.get("S3Bucket") and locate(r["ImageKey"], self.sources))

    def show_fingerprint(self) -> None:
        if self.detail is not None:
            self.set_query(FailureQuery(fingerprint=self.detail.record.get("FailureFingerprint"),
                                        newest_first=self.query.newest_first))

    def show_image(self) -> None:
        if self.detail is not None:
            self.set_query(FailureQuery(text=self.detail.record["ImageKey"], newest_first=self.query.newest_first))

    # -- actions on the selection ---------------------------------------------------------------
    def _guarded(self, action: Callable[[], str]) -> None:
        """Run a button's action; its outcome (or its error, as one line) goes under the buttons."""
        self.action_output.value = render_inline("<i>working…</i>")
        try:
            self.action_output.value = action()
        except Exception as exc:  # a UI callback: one line, never a traceback nobody sees
            self.action_output.value = render_inline('<span class="error">{{ e }}</span>',
                                                     e=" ".join(str(exc).split()) or type(exc).__name__)

    def matching(self) -> Iterator[Record]:
        """Every failure the filters match, page after page (streamed: nothing is held)."""
        cursor: Cursor | None = None
        while True:
            page = self.store.failures_page(self.query, 500, cursor)
            yield from page.records
            cursor = page.cursor
            if cursor is None:
                return

    def export(self) -> str:
        """The selection (more than one row selected) or every failure the filters match, as CSV."""
        chosen = self.selected
        records = chosen if len(chosen) > 1 else self.matching()
        path = unique_path(self.output_dir, f"failures_{dt.datetime.now(dt.timezone.utc):%Y%m%d_%H%M%S}", ".csv",
                           sep="_")
        count = write_csv(records, path)
        self.last_export = path
        return render_inline("<p>Exported {{ n|num }} {{ what }}.</p>{{ link }}", n=count, link=Markup(download_html(path)),
                             what="selected failures" if len(chosen) > 1 else "failures matching the filters")

    def rerun(self) -> str:
        """A batch on exactly the selected images (or this page's) under the candidate, then its comparison."""
        from ocrlab.analysis.compare import compare_versions
        from ocrlab.ocr.preprocess import Preprocess
        from ocrlab.reports.comparison import comparison_fragment
        from ocrlab.runs.batch import run_batch
        from ocrlab.version import load_version
        chosen = self.selected if len(self.selected) > 1 else self._records
        if not chosen:
            raise OcrlabError("no failures selected")
        if not self.candidate_file.value.strip():
            raise OcrlabError("name the candidate's version file (OCR_VERSION.txt of the candidate) first")
        version_file = str(in_project(self.candidate_file.value.strip()))
        candidate = load_version(version_file)
        base = self.query.ocr_version or cast(str, Counter(r.get("OCRFullVersion") for r in chosen)
                                              .most_common(1)[0][0])  # the failures a batch wrote carry their version
        if candidate.full_version == base:
            raise OcrlabError(f"the candidate's version is the base version {base}: give it its own version")
        keys = sorted({r["ImageKey"] for r in chosen})
        local = sorted({r["ImageKey"] for r in chosen if not r.get("S3Bucket")})
        found, missing = image_folders(local, self.sources)
        folders: dict[str, list[str]] = {**{str(f): k for f, k in found.items()}, **s3_sources(chosen)}
        if not folders:
            raise OcrlabError(f"none of the {len(keys)} images was found ({missing[0]}): give "
                              "failure_browser(..., source=FOLDER), the folder the batch read them from")
        preprocess = Preprocess.from_json(self.preprocess.value) if self.preprocess.value.strip() else None
        processed = succeeded = failed = 0
        for folder, there in folders.items():  # one batch per folder the images were read from
            summary = run_batch(folder, self.store, keys=there, engine=self.engine.value,
                                version_file=version_file, progress=False, force=True, preprocess=preprocess)
            processed, succeeded, failed = (processed + summary.processed, succeeded + summary.succeeded,
                                            failed + summary.failed)
        comparison = compare_versions(self.store, base, candidate.full_version, keys=keys,
                                      truth_sources=self.sources)
        self.last_comparison = comparison
        return render_inline("<p>Ran {{ processed }} of the {{ n }} selected images under <code>{{ v }}</code>: "
                             "{{ succeeded }} read, {{ failed }} failed{% if missing %}; {{ missing|length }} not "
                             "found ({{ missing[0] }}){% endif %}.</p>{{ body }}",
                             processed=processed, succeeded=succeeded, failed=failed, n=len(keys), missing=missing,
                             v=candidate.full_version, body=comparison_fragment(comparison))

    # -- display --------------------------------------------------------------------------------
    @property
    def html(self) -> str:
        """The page and the failure shown, as static HTML (the report's copy of the widget)."""
        return render("failure_browser.html.j2", rows=self._records, d=self.detail, message=None,
                      description=describe(self.query))

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self.html  # what a report (or a front end without widgets) shows
        return bundle


def render_inline(template: str, **context: Any) -> str:
    return environment().from_string(template).render(**context)


def describe(query: FailureQuery) -> str:
    """The filters in words, for headings: `type OCR_ERROR, version 2.1.0-2025-11-02, newest first`."""
    parts = [f"{name} {value}" for name, value in (
        ("type", query.failure_type), ("version", query.ocr_version), ("error code", query.error_code),
        ("fingerprint", query.fingerprint), ("since", query.since), ("until", query.until),
        ("matching", repr(query.text) if query.text else None)) if value]
    return ", ".join(parts + ["newest first" if query.newest_first else "oldest first"])


def failure_browser(table: str | SpoolingStore, source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
                    output_dir: str | os.PathLike[str] | None = None, page_size: int = PAGE_SIZE,
                    **filters: Any) -> FailureBrowser:
    """The failure browser of a table (a name or an open store); `source` is the folder (or folders) the
    images were read from, relative ones the project folder's (None: the project folder, and the demo's
    samples for the demo's table); S3 images are read from the bucket their records name."""
    from ocrlab.store.failure_log import store_for
    store = store_for(table)
    sources = ([] if source is None else [source] if isinstance(source, (str, os.PathLike)) else list(source)) \
        or default_sources(store.table)
    return FailureBrowser(store, sources, output_dir, page_size, FailureQuery(**filters))



def s3_sources(records: Sequence[Record]) -> dict[str, list[str]]:
    """The S3 images among `records`, as the prefix a batch re-running them lists (one per bucket, the
    keys' common folder) and their keys."""
    by_bucket: dict[str, set[str]] = {}
    for record in records:
        if record.get("S3Bucket"):
            by_bucket.setdefault(str(record["S3Bucket"]), set()).add(record["ImageKey"])
    sources = {}
    for bucket, keys in by_bucket.items():
        common = os.path.commonprefix(sorted(keys))
        sources[f"s3://{bucket}/{common[:common.rfind('/') + 1]}"] = sorted(keys)
    return sources
