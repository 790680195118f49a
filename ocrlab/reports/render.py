"""HTML rendering shared by every report: one Jinja2 environment, figures as inline PNGs, text diffs.

Templates ship in `ocrlab/reports/templates/` and are rendered with autoescape on: text that came from
images, file names or models is data, never markup. Nothing here builds HTML from such text by
string concatenation; helpers hand structured values to templates, which escape them.
"""
from __future__ import annotations

import base64
import datetime as dt
import difflib
import io
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ocrlab.errors import MissingDependency
from ocrlab.files import write_chunks

try:
    import jinja2
    from markupsafe import Markup, escape
except ImportError as exc:  # pragma: no cover - jinja2 is in the analysis extra
    raise MissingDependency("jinja2", "analysis") from exc


def _pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value) * 100:.{digits}f}%"


def _num(value: Any, digits: int = 0) -> str:
    """Thousands separators; None (unknown) shows as a dash, never as 0."""
    if value is None or value == "":
        return "–"
    return f"{float(value):,.{digits}f}"


def _delta(value: Any, digits: int = 0) -> str:
    """A difference with its sign always shown."""
    return "–" if value is None else f"{float(value):+,.{digits}f}"


def _when(value: Any) -> str:
    """A stored timestamp to the second: `2025-10-24 08:15:02` (UTC, as stored)."""
    text = "" if value is None else str(value)
    return text[:19].replace("T", " ") if len(text) >= 19 and text[10] == "T" else text


_AFTER_SEPARATOR = re.compile(r"(?<=[/\\_.\-:])")


def _wrap_key(value: Any) -> Markup:
    """A key or path that may wrap after its separators (`/`, `_`, `.`, `-`, `:`), never inside a word."""
    return Markup("<wbr>").join(escape(part) for part in _AFTER_SEPARATOR.split(str(value or "")))


def _show(value: Any) -> str:
    """A parsed value as read: None is shown as missing, numbers without trailing zeros."""
    if value is None or value == "":
        return "(missing)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _outcome(record: Any) -> str:
    return "OK" if record.get("RecordType") == "OCR_RESULT" else str(record.get("FailureType") or "failed")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The package's Jinja2 environment; autoescape is on for every template, whatever its name."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("ocrlab.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, delta=_delta, when=_when, wrap_key=_wrap_key, show=_show, outcome=_outcome)
    env.globals["now"] = lambda: dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from ocrlab.analysis.compare import CATEGORY_LABELS, STATUS_LABELS  # a comparison's words, defined once
    env.globals.update(category_labels=CATEGORY_LABELS, status_labels=STATUS_LABELS)
    return env


def render(template_name: str, **context: Any) -> str:
    """Render a template of `ocrlab/reports/templates/` to a string."""
    return environment().get_template(template_name).render(**context)


def write(path: str | Path, template_name: str, **context: Any) -> Path:
    """Render a template into a file as it renders (parent folders created, renamed into place when
    complete: a large page is never held whole); returns the path."""
    return write_chunks(environment().get_template(template_name).generate(**context), path)


def figure_to_img(figure: Any, alt: str = "", dpi: int = 100) -> Markup:
    """A matplotlib Figure as a self-contained `<img>` (base64 PNG), safe to put in a template."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Markup('<img src="data:image/png;base64,{}" alt="{}">').format(data, escape(alt))


# --- side-by-side text diffs -------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    """A piece of one line; `changed` marks characters that differ from the other side."""

    text: str
    changed: bool = False


@dataclass
class DiffRow:
    """One row of a side-by-side diff.

    kind: equal, replace, delete (left only), insert (right only), or skip (a run of
    `skipped` equal lines left out). Line numbers are 1-based; None where a side has no line.
    """

    kind: str
    left_no: int | None = None
    right_no: int | None = None
    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)
    skipped: int = 0


def _char_segments(a: str, b: str) -> tuple[list[Segment], list[Segment]]:
    """Both lines cut into unchanged and changed pieces, from a character-level match."""
    left: list[Segment] = []
    right: list[Segment] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        same = tag == "equal"
        if i2 > i1:
            left.append(Segment(a[i1:i2], not same))
        if j2 > j1:
            right.append(Segment(b[j1:j2], not same))
    return left, right


def _equal_rows(lines: list[str], i1: int, j1: int, span: int, head: int, tail: int) -> list[DiffRow]:
    """Equal lines, keeping `head` lines after a change and `tail` before one; the rest collapse."""
    def row(k: int) -> DiffRow:
        return DiffRow("equal", i1 + k + 1, j1 + k + 1, [Segment(lines[i1 + k])], [Segment(lines[i1 + k])])
    if span <= head + tail + 1:  # collapsing one line would not save anything
        return [row(k) for k in range(span)]
    return ([row(k) for k in range(head)] + [DiffRow("skip", skipped=span - head - tail)]
            + [row(k) for k in range(span - tail, span)])


def side_by_side(a: str, b: str, context: int = 3) -> list[DiffRow]:
    """Line-level diff of two texts, with character-level highlights inside replaced lines.

    Replaced blocks pair lines by position; the surplus of the longer side is a plain
    delete or insert. Runs of more than 2 * context equal lines collapse to one skip row.
    """
    left_lines, right_lines = a.splitlines(), b.splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(None, left_lines, right_lines, autojunk=False)
    opcodes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            rows += _equal_rows(left_lines, i1, j1, i2 - i1,
                                head=0 if index == 0 else context,
                                tail=0 if index == len(opcodes) - 1 else context)
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            left, right = _char_segments(left_lines[i1 + k], right_lines[j1 + k])
            rows.append(DiffRow("replace", i1 + k + 1, j1 + k + 1, left, right))
        for k in range(i1 + pairs, i2):
            rows.append(DiffRow("delete", left_no=k + 1, left=[Segment(left_lines[k], True)]))
        for k in range(j1 + pairs, j2):
            rows.append(DiffRow("insert", right_no=k + 1, right=[Segment(right_lines[k], True)]))
    return rows
