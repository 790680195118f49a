"""OCR evaluation: CER, WER and an order-tolerant bag-of-words measure against reference text.

Metrics return counts, never bare rates, so a corpus figure is the sum of the documents'
counts: corpus CER = all character errors / all reference characters (a long receipt
weighs more than a short one; dinglehopper's unweighted mean of rates is not copied).

Normalisation before any comparison (`normalise`): Unicode NFC, every run of whitespace
(line breaks included, since engines break lines differently) becomes one space, leading
and trailing space is stripped; case-sensitive unless `fold_case=True` (str.casefold).
Characters are code points after NFC.
"""
from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from ocrlab.errors import InputError
from ocrlab.ocr.engines.base import Engine
from ocrlab.ocr.preflight import prepare_image
from ocrlab.taxonomy import classify

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of a hypothesis against a reference; add them to get corpus totals."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def n(self) -> int:
        """Reference length."""
        return self.hits + self.substitutions + self.deletions

    @property
    def hyp_len(self) -> int:
        return self.hits + self.substitutions + self.insertions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / n; may exceed 1 with insertions. Empty reference: 0.0 if nothing was
        inserted else 1.0 (not infinity, which JSON cannot carry)."""
        if self.n == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.n

    @property
    def precision(self) -> float:
        return self.hits / self.hyp_len if self.hyp_len else float(self.n == 0)

    @property
    def recall(self) -> float:
        return self.hits / self.n if self.n else float(self.hyp_len == 0)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(self.hits + other.hits, self.substitutions + other.substitutions,
                           self.deletions + other.deletions, self.insertions + other.insertions)

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "n": self.n, "errors": self.errors, "rate": self.rate}


def align_counts(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> ErrorCounts:
    """Levenshtein alignment counts (unit costs) of any two sequences of hashable items.

    The alignment is rapidfuzz's (as in jiwer), with no size limit: of the alignments with the
    fewest edits it reports one backtrace; totals (errors, n) do not depend on which.
    """
    ops = Counter(op.tag for op in Levenshtein.editops(reference, hypothesis))
    subs, dels, ins = ops["replace"], ops["delete"], ops["insert"]
    return ErrorCounts(len(reference) - subs - dels, subs, dels, ins)


def normalise(text: str, *, fold_case: bool = False) -> str:
    """NFC, whitespace runs -> one space, stripped; optionally case-folded."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return text.casefold() if fold_case else text


def cer(reference: str, hypothesis: str, *, fold_case: bool = False) -> ErrorCounts:
    """Character error counts after `normalise`."""
    return align_counts(normalise(reference, fold_case=fold_case),
                        normalise(hypothesis, fold_case=fold_case))


def wer(reference: str, hypothesis: str, *, fold_case: bool = False) -> ErrorCounts:
    """Word error counts; words are the space-separated tokens after `normalise`."""
    return align_counts(_words(reference, fold_case), _words(hypothesis, fold_case))


def bag_of_words(reference: str, hypothesis: str, *, fold_case: bool = False) -> ErrorCounts:
    """Order-tolerant word counts: the two texts as multisets of words.

    hits = words in both (with multiplicity); of the rest, pairs count as substitutions,
    the surplus as deletions (reference side) or insertions (hypothesis side). `rate` is then
    an order-independent WER and `f1` the bag-of-words F1 (as in ocrevalUAtion/dinglehopper).
    """
    ref, hyp = Counter(_words(reference, fold_case)), Counter(_words(hypothesis, fold_case))
    hits = sum((ref & hyp).values())
    missing, extra = ref.total() - hits, hyp.total() - hits
    subs = min(missing, extra)
    return ErrorCounts(hits, subs, missing - subs, extra - subs)


def _words(text: str, fold_case: bool) -> list[str]:
    return normalise(text, fold_case=fold_case).split()


# --- reference text ------------------------------------------------------------------------

@dataclass(frozen=True)
class Box:
    """One SROIE text line: its quadrilateral's bounding box and its text."""

    left: int
    top: int
    right: int
    bottom: int
    text: str


def read_text(path: Path) -> str:
    """A text file whatever its encoding: UTF-8 (BOM stripped), else cp1252, else latin-1."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")  # maps every byte: never fails


def read_sroie_boxes(path: Path) -> list[Box]:
    """Rows `x1,y1,...,x4,y4,TEXT`, split on the first 8 commas only (TEXT may hold commas).

    Rows without 8 numeric coordinates are skipped: SROIE files carry stray blank lines.
    """
    boxes = []
    for line in read_text(path).splitlines():
        parts = line.split(",", 8)
        if len(parts) < 9:
            continue
        try:
            coords = [round(float(v)) for v in parts[:8]]
        except ValueError:
            continue
        xs, ys = coords[0::2], coords[1::2]
        boxes.append(Box(min(xs), min(ys), max(xs), max(ys), parts[8].strip()))
    return boxes


def boxes_to_text(boxes: Iterable[Box]) -> str:
    """Reading order: visual lines top to bottom, boxes left to right within a line.

    A box joins the current line when its vertical centre lies inside that line's span, so
    boxes a few pixels apart in y still read left to right, as OCR engines order them.
    """
    lines: list[list[Box]] = []
    span = (0.0, -1.0)
    for box in sorted(boxes, key=lambda b: ((b.top + b.bottom) / 2, b.left)):
        centre = (box.top + box.bottom) / 2
        if lines and span[0] <= centre <= span[1]:
            lines[-1].append(box)
        else:
            lines.append([box])
            span = (box.top, box.bottom)
    return "\n".join(" ".join(b.text for b in sorted(line, key=lambda b: b.left) if b.text)
                     for line in lines)


def reference_candidates(gt_dir: Path, name: str) -> list[Path]:
    """Where the reference of image NAME may be, in order of preference."""
    dirs = [gt_dir]
    if gt_dir.name == "img":               # pointed at SROIE's img/: boxes are next door
        dirs.append(gt_dir.parent)
    out = []
    for d in dirs:
        out += [d / f"{name}.txt", d / "box" / f"{name}.csv", d / f"{name}.csv"]
    return out


def read_reference(gt_dir: Path, name: str) -> str | None:
    """Reference text of image NAME: `NAME.txt`, else SROIE `box/NAME.csv` (or `NAME.csv`)."""
    for path in reference_candidates(Path(gt_dir), name):
        if path.is_file():
            return read_text(path) if path.suffix == ".txt" else boxes_to_text(read_sroie_boxes(path))
    return None


# --- evaluation of an engine over a folder ---------------------------------------------------

@dataclass
class DocumentResult:
    """One image: its counts, its time, and the failure if OCR failed (counts then = all deleted)."""

    name: str
    path: str
    chars: ErrorCounts
    words: ErrorCounts
    bag: ErrorCounts
    seconds: float
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    hypothesis: str = ""    # the OCR text, for diffs; left out of to_dict to keep the JSON small

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "cer": self.chars.to_dict(),
                "wer": self.words.to_dict(), "bag_of_words": _bag_dict(self.bag),
                "seconds": round(self.seconds, 4), "error_type": self.error_type,
                "error_code": self.error_code, "error_message": self.error_message}


@dataclass
class EvalReport:
    engine: str
    model_id: str
    fold_case: bool = False
    documents: list[DocumentResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)   # {"name", "path", "reason"}

    def _total(self, attr: str) -> ErrorCounts:
        return sum((getattr(d, attr) for d in self.documents), ErrorCounts())

    @property
    def chars(self) -> ErrorCounts:
        return self._total("chars")

    @property
    def words(self) -> ErrorCounts:
        return self._total("words")

    @property
    def bag(self) -> ErrorCounts:
        return self._total("bag")

    @property
    def cer(self) -> float:
        return self.chars.rate

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def seconds_per_image(self) -> float:
        return sum(d.seconds for d in self.documents) / len(self.documents) if self.documents else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "model_id": self.model_id,
            "evaluated": len(self.documents),
            "failed": sum(d.failed for d in self.documents),
            "skipped": self.skipped,
            "normalisation": "NFC, whitespace collapsed" + (", case-folded" if self.fold_case else ""),
            "averaging": "weighted by reference length (corpus counts summed)",
            "cer": self.chars.to_dict(), "wer": self.words.to_dict(),
            "bag_of_words": _bag_dict(self.bag),
            "seconds_per_image": round(self.seconds_per_image, 4),
            "documents": [d.to_dict() for d in self.documents],
        }


def _bag_dict(counts: ErrorCounts) -> dict[str, float | int]:
    return {**counts.to_dict(), "precision": counts.precision, "recall": counts.recall, "f1": counts.f1}


def evaluate(images: Iterable[Path], gt_dir: Path, engine: Engine, *, fold_case: bool = False,
             progress: Callable[[DocumentResult], None] | None = None) -> EvalReport:
    """Preflight + OCR every image with a reference text and count errors against it.

    An image whose preflight or OCR fails is scored with an empty hypothesis (all its
    reference counted as deleted) and the failure recorded: dropping it would flatter the
    engine. An image without reference text is skipped with the reason.
    """
    report = EvalReport(engine=engine.name or type(engine).__name__, model_id=engine.model_id,
                        fold_case=fold_case)
    for path in map(Path, images):
        reference = read_reference(Path(gt_dir), path.stem)
        if reference is None:
            report.skipped.append({"name": path.stem, "path": str(path),
                                   "reason": f"no reference text in {gt_dir} "
                                             f"({path.stem}.txt or box/{path.stem}.csv)"})
            continue
        start = time.perf_counter()
        hypothesis = ""
        failure: tuple[str | None, str | None, str | None] = (None, None, None)
        try:
            try:
                data = path.read_bytes()
            except OSError as exc:  # unreadable file: an input problem, not the engine's
                raise InputError(f"{path}: cannot be read ({exc})", code=type(exc).__name__) from exc
            prepared = prepare_image(data, engine.limits, name=str(path))
            hypothesis = engine.run(prepared).raw_output or ""
        except Exception as exc:  # one bad image never costs the others
            failure_type, code = classify(exc)
            failure = (str(failure_type), code, str(exc))
        doc = DocumentResult(
            name=path.stem, path=str(path), seconds=time.perf_counter() - start,
            chars=cer(reference, hypothesis, fold_case=fold_case),
            words=wer(reference, hypothesis, fold_case=fold_case),
            bag=bag_of_words(reference, hypothesis, fold_case=fold_case),
            error_type=failure[0], error_code=failure[1], error_message=failure[2],
            hypothesis=hypothesis)
        report.documents.append(doc)
        if progress is not None:
            progress(doc)
    return report
