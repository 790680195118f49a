"""The comparison of two versions as files and fragments: JSON streamed one image per line, a standalone
HTML page with its list pages, and the page's body as a fragment a notebook or widget shows inline.

The page is bounded by what a person reads, not by the table: every regression and the first
`Comparison.shown` images of each other group in full (side-by-side diffs), then the rest one line each,
on list pages of LIST_LINES lines beside it (`NAME-list-N.html`, linked both ways; no script: the
reports' CSP allows none). A fragment without list pages lists at most INLINE_LINES of the rest.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from markupsafe import Markup

from ocrlab.analysis.compare import Comparison, ImageComparison
from ocrlab.files import write_chunks
from ocrlab.reports.links import FileLink
from ocrlab.reports.render import render, side_by_side, write

LIST_LINES = 1000
INLINE_LINES = 500
LISTED = ("improved", "other", "one_sided")  # the groups whose rest is listed, in page order


def write_comparison(comparison: Comparison, json_path: str | os.PathLike[str] | None = None,
                     html_path: str | os.PathLike[str] | None = None) -> None:
    """What `ocrlab compare` writes: the JSON and/or the HTML asked for."""
    if json_path:
        write_comparison_json(comparison, json_path)
    if html_path:
        render_comparison_html(comparison, html_path)


def _json_chunks(comparison: Comparison) -> Iterator[str]:
    header = json.dumps(comparison.header(), ensure_ascii=False, allow_nan=False)
    yield header[:-1] + ', "images": ['
    for n, image in enumerate(comparison.image_dicts()):
        yield ("\n" if n == 0 else ",\n") + json.dumps(image, ensure_ascii=False, allow_nan=False)
    yield "\n]}\n"


def write_comparison_json(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """Strict JSON, streamed: the first line holds everything but the images, then one image per line
    (report order), so a reader can take it whole (`json.load`) or a line at a time."""
    return write_chunks(_json_chunks(comparison), path)


# --- the page and its list pages --------------------------------------------------------------

@dataclass(frozen=True)
class ListPage:
    """One page of the images listed one line each; `start` is the number of its first line (from 1)."""

    number: int
    name: str
    images: list[ImageComparison]
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.images) - 1


@dataclass(frozen=True)
class Listing:
    """The list pages of a comparison page, and which of them hold each group's rest."""

    page: str                                  # the comparison page's file name (list pages link back)
    pages: list[ListPage]
    spans: dict[str, tuple[ListPage, ListPage]]  # group -> its first and last list page

    @property
    def lines(self) -> int:
        return sum(len(p.images) for p in self.pages)


def list_pages(comparison: Comparison, page_path: Path, lines: int = LIST_LINES) -> Listing:
    """Paginate the rest of every listed group, in report order, into pages beside `page_path`."""
    sections = comparison.sections()
    rest = [(group, image) for group in LISTED for image in sections[group].rest]
    pages = [ListPage(n + 1, f"{page_path.stem}-list-{n + 1}{page_path.suffix}",
                      [image for _, image in rest[start:start + lines]], start + 1)
             for n, start in enumerate(range(0, len(rest), lines))]
    spans: dict[str, tuple[ListPage, ListPage]] = {}
    for index, (group, _) in enumerate(rest):
        page = pages[index // lines]
        spans[group] = (spans.get(group, (page, page))[0], page)
    return Listing(page_path.name, pages, spans)


def _context(comparison: Comparison, listing: Listing | None) -> dict[str, Any]:
    sections = comparison.sections()
    full = [i for name, s in sections.items() if name != "one_sided" for i in s.shown]
    comparison.detail(full)  # a no-op for compare_versions' comparisons, which detail what they show
    diffs = {i.image_key: side_by_side(i.base.raw or "", i.candidate.raw or "")
             for i in full if i.raw_changed and i.base is not None and i.candidate is not None}
    inline = {} if listing is not None else {name: sections[name].rest[:INLINE_LINES] for name in LISTED}
    return {"c": comparison, "sections": sections, "diffs": diffs, "counts": comparison.counts,
            "outcomes": comparison.outcomes, "unchanged": comparison.counts["unchanged"],
            "totals": comparison.totals(), "field_changes": comparison.field_changes(),
            "field_regressions": comparison.field_regressions(), "listing": listing, "inline": inline}


class ComparisonFragment(Markup):
    """The comparison body as markup; a notebook displays it inline (`_repr_html_`)."""

    def _repr_html_(self) -> str:
        return str(self)


def comparison_fragment(comparison: Comparison, listing: Listing | None = None) -> ComparisonFragment:
    """Regressions (outcome and fields) first, then improvements and other changes with their diffs
    inline, then counts, field accuracy, tokens and time. All text is escaped. Without `listing`, the
    images not shown in full are listed inline (at most INLINE_LINES per group)."""
    return ComparisonFragment(render("_comparison.html.j2", **_context(comparison, listing)))


def render_comparison_html(comparison: Comparison, path: str | os.PathLike[str],
                           lines: int = LIST_LINES) -> Path:
    """A standalone HTML page of the comparison (under the reports' CSP), and its list pages beside it."""
    out = Path(path)
    listing = list_pages(comparison, out, lines)
    for page in listing.pages:
        write(out.with_name(page.name), "compare_list.html.j2", c=comparison, listing=listing, list_page=page)
    return write(out, "compare.html.j2", **_context(comparison, listing))


def comparison_link(comparison: Comparison, page: str | os.PathLike[str]) -> FileLink:
    """A notebook's link to the comparison page it wrote (the page is never copied into the notebook)."""
    listed = len(comparison_files(page)) - 1
    return FileLink(page, f"The comparison page: {comparison.counts_text()}; every regression and the first {comparison.shown:,} of "
                          f"each other group side by side" + (f", the rest on {listed} list page"
                                                               f"{'s' * (listed != 1)}" if listed else ""))


def comparison_files(path: str | os.PathLike[str]) -> list[Path]:
    """A comparison page and the list pages written beside it."""
    out = Path(path)
    return [out, *sorted(out.parent.glob(f"{out.stem}-list-*{out.suffix}"),
                         key=lambda p: int(p.stem.rsplit("-", 1)[1]))]
