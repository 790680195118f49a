"""Comparing two OCR versions image by image, from the latest outcome of each image under each.

Every image is counted in exactly one category (CATEGORIES, named by CATEGORY_LABELS: the words and
counts every summary, page, notebook and JSON file uses):
`regressed` (the candidate failed where the base read it, or read fewer fields right), `improved`
("fixed or improved": the candidate read it where the base failed, or read more fields right),
`other` ("changed otherwise": the outcome, the failure, the timesheet read or the raw text differ, no
better or worse), `unchanged`, `new` (only the candidate ran it), `not_run` (only the base ran it).

Its status says what happened to its outcome alone (STATUSES): `fixed` (failed, then read),
`broken` (read, then failed), `still_failing`, `still_ok`, `new`, `not_run`. A regression is more than
a status: with ground truth, an image whose fields got worse is a regression even when both outcomes
are OK (`fields_lost` names them), and a field whose accuracy fell over all images is a field
regression (`Comparison.field_changes`). Reports lead with them.

A comparison costs what a person reads, not what the table holds (ocrlab.analysis.outcomes): counts, what
changed (from digests of the outputs), tokens, time and field accuracy cover every image; the texts
are read by key, and character-level figures computed, only for the images shown in full: every
regression and, per other group, the first `shown` by severity (`Comparison.detail` adds any other).
`raw_cer` is the candidate's raw text against the base's as the reference (`evaluate.cer`): the share
of the base text the candidate changed.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Iterator, NamedTuple, Sequence

from ocrlab.analysis.outcomes import OK, OutcomeReader, Side
from ocrlab.evaluation.evaluate import cer
from ocrlab.evaluation.fields import FieldAccuracy, GroundTruth, score_fields
from ocrlab.files import json_safe
from ocrlab.store.spooling import SpoolingStore
from ocrlab.timesheet.schema import ENTRY_FIELDS

__all__ = ["CATEGORIES", "CATEGORY_LABELS", "GROUPS", "OK", "STATUSES", "STATUS_LABELS", "Comparison",
           "ImageComparison", "Side", "compare_image", "compare_versions"]

CATEGORIES = ("regressed", "improved", "other", "unchanged", "new", "not_run")
CATEGORY_LABELS = {"regressed": "regressed", "improved": "fixed or improved", "other": "changed otherwise",
                   "unchanged": "unchanged", "new": "new (candidate only)", "not_run": "not run by the candidate"}
GROUPS = CATEGORIES[:4]  # the categories of the images both versions ran
STATUSES = ("fixed", "broken", "still_failing", "still_ok", "new", "not_run")
STATUS_LABELS = {"fixed": "fixed", "broken": "broken", "still_failing": "failed by both", "still_ok": "read by both",
                 "new": "new", "not_run": "not run"}
SHOWN = 200  # full diffs per group beyond the regressions (which are all shown)
_ORDER = {"regressed": 0, "improved": 1, "other": 2, "new": 3, "not_run": 4, "unchanged": 5}


def _delta(base: float | None, candidate: float | None) -> float | None:
    return None if base is None or candidate is None else candidate - base


# --- one image ---------------------------------------------------------------------------------

@dataclass(slots=True)
class ImageComparison:
    """What changed for one image between the base and the candidate version."""

    image_key: str
    status: str
    base: Side | None
    candidate: Side | None
    raw_cer: float | None = None      # candidate raw vs base raw as reference; None until detailed
    raw_edits: int | None = None
    base_fields: tuple[int, int] | None = None       # (correct, total) against ground truth
    candidate_fields: tuple[int, int] | None = None
    fields_lost: list[str] = field(default_factory=list)     # right under the base, wrong under the candidate
    fields_gained: list[str] = field(default_factory=list)   # wrong under the base, right under the candidate

    @property
    def both(self) -> bool:
        return self.base is not None and self.candidate is not None

    @property
    def raw_changed(self) -> bool | None:
        return self.base.raw_digest != self.candidate.raw_digest if self.base and self.candidate else None

    @property
    def parsed_changed(self) -> bool | None:
        """Whether the timesheet read differs; None unless both versions read one."""
        if self.base is None or self.candidate is None or not (self.base.ok and self.candidate.ok):
            return None
        return self.base.parsed_digest != self.candidate.parsed_digest

    @property
    def outcome_changed(self) -> bool:
        b, c = self.base, self.candidate
        return b is not None and c is not None and (b.outcome, b.error_code) != (c.outcome, c.error_code)

    @property
    def fields_worse(self) -> bool:
        """Fewer ground-truth fields right under the candidate than under the base."""
        return (self.base_fields is not None and self.candidate_fields is not None
                and self.candidate_fields[0] < self.base_fields[0])

    @property
    def fields_better(self) -> bool:
        return (self.base_fields is not None and self.candidate_fields is not None
                and self.candidate_fields[0] > self.base_fields[0])

    @property
    def regression(self) -> bool:
        """The candidate failed where the base read it, or read fewer fields right."""
        return self.status == "broken" or self.fields_worse

    @property
    def improvement(self) -> bool:
        return not self.regression and (self.status == "fixed" or self.fields_better)

    @property
    def changed(self) -> bool:
        """Worth a diff: the outcome flipped, or either output (or the failure) differs."""
        return self.both and (self.status in ("fixed", "broken") or bool(self.raw_changed)
                              or bool(self.parsed_changed) or self.fields_worse or self.fields_better
                              or self.outcome_changed)

    @property
    def group(self) -> str:
        """Where a report lists it: `regressed`, `improved`, `other` (changed otherwise) or `unchanged`."""
        if self.regression:
            return "regressed"
        if self.improvement:
            return "improved"
        return "other" if self.changed else "unchanged"

    @property
    def category(self) -> str:
        """The one category (CATEGORIES) it is counted in."""
        return self.group if self.both else self.status

    @property
    def severity(self) -> tuple[Any, ...]:
        """Report order within a group, most telling first: outcome regressions before field ones and
        fixes before field gains, each by the number of fields; among other changes, a different
        failure, then a different timesheet, then raw text only. Then by image key."""
        group = self.group if self.both else self.status
        if group == "regressed":
            rank: tuple[int, ...] = (self.status != "broken", -len(self.fields_lost))
        elif group == "improved":
            rank = (self.status != "fixed", -len(self.fields_gained))
        elif group == "other":
            rank = (0 if self.outcome_changed else 1 if self.parsed_changed else 2,)
        else:
            rank = ()
        return (_ORDER[group], *rank, self.image_key)

    @property
    def detailed(self) -> bool:
        """Both texts read and the character-level figures computed (only images shown or asked for)."""
        return self.both and self.raw_cer is not None

    def compute_detail(self) -> None:
        """Character-level figures, once both sides' texts are loaded."""
        if self.base and self.candidate and self.base.loaded and self.candidate.loaded and self.raw_cer is None:
            counts = cer(self.base.raw or "", self.candidate.raw or "")
            self.raw_cer, self.raw_edits = counts.rate, counts.errors

    def changes(self) -> list[str]:
        """What changed, in words, for a one-line listing."""
        words = [w for w, on in (("outcome", self.outcome_changed), ("timesheet read", self.parsed_changed),
                                 ("raw output", self.raw_changed)) if on]
        words += [f"{len(names)} field{'s' * (len(names) != 1)} {how}"
                  for how, names in (("lost", self.fields_lost), ("gained", self.fields_gained)) if names]
        return words

    def deltas(self) -> dict[str, float | None]:
        b, c = self.base, self.candidate
        if b is None or c is None:
            return {"input_tokens": None, "output_tokens": None, "seconds": None}
        return {"input_tokens": _delta(b.input_tokens, c.input_tokens),
                "output_tokens": _delta(b.output_tokens, c.output_tokens), "seconds": _delta(b.seconds, c.seconds)}

    def to_dict(self) -> dict[str, Any]:
        return {"image_key": self.image_key, "status": self.status, "category": self.category,
                "changed": self.changed,
                "base": self.base.to_dict() if self.base else None,
                "candidate": self.candidate.to_dict() if self.candidate else None,
                "raw_changed": self.raw_changed, "raw_cer": self.raw_cer, "raw_edits": self.raw_edits,
                "parsed_changed": self.parsed_changed, "deltas": self.deltas(),
                "base_fields": _fields_dict(self.base_fields), "candidate_fields": _fields_dict(self.candidate_fields),
                "regression": self.regression, "fields_lost": self.fields_lost, "fields_gained": self.fields_gained}


def _fields_dict(score: tuple[int, int] | None) -> dict[str, Any] | None:
    return None if score is None else {"correct": score[0], "total": score[1],
                                       "accuracy": score[0] / score[1] if score[1] else None}


def _status(base: Side | None, candidate: Side | None) -> str:
    if base is None:
        return "new"
    if candidate is None:
        return "not_run"
    return {(False, True): "fixed", (True, False): "broken",
            (False, False): "still_failing", (True, True): "still_ok"}[(base.ok, candidate.ok)]


def _image(image_key: str, base: Side | None, candidate: Side | None) -> ImageComparison:
    return ImageComparison(image_key, _status(base, candidate), base, candidate)


def compare_image(image_key: str, base: dict[str, Any] | None, candidate: dict[str, Any] | None) -> ImageComparison:
    """Compare one image's latest full records under the two versions (either may be None)."""
    item = _image(image_key, *(Side.from_record(r) if r is not None else None for r in (base, candidate)))
    item.compute_detail()
    return item


# --- two versions ------------------------------------------------------------------------------

def _side_totals(sides: list[Side]) -> dict[str, Any]:
    seconds = [s.seconds for s in sides if s.seconds is not None]
    return {"images": len(sides), "input_tokens": sum(s.input_tokens or 0 for s in sides),
            "output_tokens": sum(s.output_tokens or 0 for s in sides),
            "seconds_total": sum(seconds) if seconds else None,
            "seconds_mean": sum(seconds) / len(seconds) if seconds else None}


class Section(NamedTuple):
    """A group's images in report order: `shown` in full (diffs), the `rest` one line each."""

    shown: list[ImageComparison]
    rest: list[ImageComparison]

    @property
    def total(self) -> int:
        return len(self.shown) + len(self.rest)


@dataclass
class Comparison:
    """Every image's comparison, the counts per category and per status and, with ground truth, field accuracy.

    `shown` bounds the full diffs per group (regressions are all shown); `reader` reads texts by key
    for `detail` (None for a comparison built from records already in memory)."""

    base: str
    candidate: str
    images: list[ImageComparison] = field(default_factory=list)
    field_accuracy: dict[str, FieldAccuracy] | None = None   # {"base": ..., "candidate": ...}
    ground_truth: str | None = None
    warnings: list[str] = field(default_factory=list)
    shown: int = SHOWN
    reader: OutcomeReader | None = field(default=None, repr=False, compare=False)
    _order: tuple[int, int, list[ImageComparison]] | None = field(default=None, init=False, repr=False,
                                                                    compare=False)

    @property
    def counts(self) -> dict[str, int]:
        """Images per category (CATEGORIES): the counts every report shows; they add up to every image."""
        found = Counter(i.category for i in self.images)
        return {category: found[category] for category in CATEGORIES}

    @property
    def outcomes(self) -> dict[str, int]:
        """Images per status (STATUSES): what happened to the outcomes alone."""
        found = Counter(i.status for i in self.images)
        return {status: found[status] for status in STATUSES}

    def ordered(self) -> list[ImageComparison]:
        """Report order: regressions, improvements, other changes (each by severity), images run by one
        version only, then the unchanged. Sorted once per list of images (scoring re-sorts)."""
        key = (id(self.images), len(self.images))
        if self._order is None or self._order[:2] != key:
            self._order = (*key, sorted(self.images, key=lambda i: i.severity))
        return list(self._order[2])

    def changed(self) -> list[ImageComparison]:
        return [i for i in self.ordered() if i.changed]

    def grouped(self) -> dict[str, list[ImageComparison]]:
        """The images both versions ran by GROUPS (regressed, improved, other, unchanged), report order."""
        groups: dict[str, list[ImageComparison]] = {g: [] for g in GROUPS}
        for item in self.ordered():
            if item.both:
                groups[item.group].append(item)
        return groups

    def one_sided(self) -> list[ImageComparison]:
        """The images only one version ran (new, then not run)."""
        return [i for i in self.ordered() if not i.both]

    def sections(self) -> dict[str, Section]:
        """regressed, improved, other and one_sided: what a report shows in full and what it lists.
        Every regression is shown; of the others, the first `shown`."""
        groups = self.grouped()
        out = {"regressed": Section(groups["regressed"], [])}
        for name, images in (("improved", groups["improved"]), ("other", groups["other"]),
                             ("one_sided", self.one_sided())):
            out[name] = Section(images[:self.shown], images[self.shown:])
        return out

    def detail(self, images: Iterable[ImageComparison]) -> list[ImageComparison]:
        """Read the texts of these images under both versions (by key) and compute their character-level
        figures; returns them. Images already detailed, or run by one version, cost nothing more."""
        images = list(images)
        if self.reader is not None:
            self.reader.read_texts((i.image_key, s) for i in images for s in (i.base, i.candidate) if s is not None)
        for image in images:
            image.compute_detail()
        return images

    def field_changes(self) -> list[dict[str, Any]]:
        """Per field name (all fields first): base and candidate accuracy and the change, worst first."""
        if self.field_accuracy is None:
            return []
        base, cand = (self.field_accuracy[s] for s in ("base", "candidate"))
        b_fields, c_fields = base.by_field(), cand.by_field()
        empty = {"correct": 0, "total": 0, "accuracy": None}
        rows: list[dict[str, Any]] = [
            {"field": "all fields", "base": {"correct": base.fields_correct, "total": base.fields,
                                             "accuracy": base.accuracy},
             "candidate": {"correct": cand.fields_correct, "total": cand.fields, "accuracy": cand.accuracy}}]
        for name in dict.fromkeys([*b_fields, *c_fields]):
            rows.append({"field": name, "base": b_fields.get(name, empty), "candidate": c_fields.get(name, empty)})
        for row in rows:
            row["change"] = _delta(row["base"]["accuracy"], row["candidate"]["accuracy"])
        return rows

    def field_regressions(self) -> list[dict[str, Any]]:
        """The fields (by name, `all fields` included) whose accuracy fell, the largest fall first."""
        return sorted((r for r in self.field_changes() if r["change"] is not None and r["change"] < 0),
                      key=lambda r: r["change"])

    def regressions(self) -> list[ImageComparison]:
        return [i for i in self.ordered() if i.regression]

    def totals(self) -> dict[str, Any]:
        """Token and time sums over the images both versions ran (like for like), and their deltas."""
        both = [i for i in self.images if i.base is not None and i.candidate is not None]
        base = _side_totals([i.base for i in both if i.base is not None])
        cand = _side_totals([i.candidate for i in both if i.candidate is not None])
        keys = ("input_tokens", "output_tokens", "seconds_total", "seconds_mean")
        return {"images_compared": len(both), "base": base, "candidate": cand,
                "delta": {k: _delta(base[k], cand[k]) for k in keys}}

    def header(self) -> dict[str, Any]:
        """Everything but the images, in plain JSON types (no Decimal, no NaN)."""
        sections = self.sections()
        counts = self.counts
        return json_safe({
            "base": self.base, "candidate": self.candidate, "counts": counts, "labels": CATEGORY_LABELS,
            "outcomes": self.outcomes, "images_total": len(self.images),
            "changed": sum(counts[g] for g in ("regressed", "improved", "other")),
            "shown_in_full": sum(len(s.shown) for name, s in sections.items() if name != "one_sided"),
            "field_regressions": self.field_regressions(), "totals": self.totals(), "ground_truth": self.ground_truth,
            "field_accuracy": ({side: acc.to_dict() for side, acc in self.field_accuracy.items()}
                               if self.field_accuracy is not None else None),
            "warnings": list(self.warnings)})

    def image_dicts(self) -> Iterator[dict[str, Any]]:
        """Each image in report order (what `--json` streams, one per line); already plain JSON types."""
        for image in self.ordered():
            yield image.to_dict()

    def to_dict(self) -> dict[str, Any]:
        """The header and every image, in one dict (for small comparisons; files stream instead)."""
        return {**self.header(), "images": list(self.image_dicts())}

    def changes_frame(self, limit: int | None = None) -> Any:
        """The images that changed, regressions first, in words and percentages (what a notebook shows);
        the first `limit` of them if given."""
        import pandas as pd
        rows = []
        for i in self.changed()[:limit]:
            fields = "" if i.base_fields is None or i.candidate_fields is None else \
                f"{i.base_fields[0]}/{i.base_fields[1]} → {i.candidate_fields[0]}/{i.candidate_fields[1]}"
            rows.append({"image": i.image_key, "change": CATEGORY_LABELS[i.category], "outcome": f"{i.base.outcome} → {i.candidate.outcome}"
                         if i.base and i.candidate else i.status, "fields right": fields,
                         "fields lost": ", ".join(i.fields_lost), "raw output changed": "" if i.raw_cer is None
                         else f"{i.raw_cer:.1%}"})
        return pd.DataFrame(rows, columns=["image", "change", "outcome", "fields right", "fields lost",
                                           "raw output changed"])

    def field_frame(self) -> Any:
        """Field accuracy per field (all fields first, then worst change first), for notebooks; empty
        without ground truth."""
        import pandas as pd
        rows = sorted(self.field_changes(), key=lambda r: (r["field"] != "all fields", r["change"] or 0.0))
        return pd.DataFrame([{"field": r["field"], "base": r["base"]["accuracy"], "candidate": r["candidate"]["accuracy"],
                              "change": r["change"], "base right": f"{r['base']['correct']}/{r['base']['total']}",
                              "candidate right": f"{r['candidate']['correct']}/{r['candidate']['total']}"}
                             for r in rows], columns=["field", "base", "candidate", "change", "base right",
                                                      "candidate right"])

    def frame(self) -> Any:
        """One row per image (report order), for notebooks."""
        import pandas as pd
        columns = ["image_key", "category", "status", "changed", "base_outcome", "candidate_outcome", "base_error_code",
                   "candidate_error_code", "raw_changed", "raw_cer", "parsed_changed", "input_tokens_delta",
                   "output_tokens_delta", "seconds_delta", "base_field_accuracy", "candidate_field_accuracy"]
        rows = []
        for i in self.ordered():
            d = i.deltas()
            rows.append([i.image_key, i.category, i.status, i.changed, i.base.outcome if i.base else None,
                         i.candidate.outcome if i.candidate else None, i.base.error_code if i.base else None,
                         i.candidate.error_code if i.candidate else None, i.raw_changed, i.raw_cer,
                         i.parsed_changed, d["input_tokens"], d["output_tokens"], d["seconds"],
                         _ratio(i.base_fields), _ratio(i.candidate_fields)])
        return pd.DataFrame(rows, columns=columns)

    def labelled_counts(self) -> dict[str, int]:
        """The counts by their words, in order (images of one version only when there are any)."""
        return {CATEGORY_LABELS[c]: n for c, n in self.counts.items() if n or c not in ("new", "not_run")}

    def counts_text(self) -> str:
        """The categories in words, `3 regressed, 2 fixed or improved, ...`."""
        return ", ".join(f"{n:,} {label}" for label, n in self.labelled_counts().items())

    def outcomes_text(self) -> str:
        return ", ".join(f"{n:,} {STATUS_LABELS[s]}" for s, n in self.outcomes.items()
                         if n or s not in ("new", "not_run"))

    def summary(self) -> str:
        """One line for the terminal: the categories, then the outcomes alone, then field accuracy."""
        line = (f"{self.base} -> {self.candidate}: {len(self.images):,} images: {self.counts_text()}; "
                f"outcomes: {self.outcomes_text()}")
        if self.field_accuracy:
            accs = {s: a.accuracy for s, a in self.field_accuracy.items()}
            line += "; field accuracy " + ", ".join(
                f"{s} {'n/a' if v is None else f'{v:.1%}'}" for s, v in accs.items())
        return line


def _ratio(score: tuple[int, int] | None) -> float | None:
    return score[0] / score[1] if score and score[1] else None


def compare_versions(store: SpoolingStore, base: str, candidate: str,
                     ground_truth: str | os.PathLike[str] | None = None,
                     keys: Collection[str] | None = None, shown: int = SHOWN,
                     truth_sources: Sequence[str | os.PathLike[str]] | None = None) -> Comparison:
    """Compare the latest outcome of every image (of `keys`, if given) under `base` with that under
    `candidate`; the images a report shows in full (`shown` per group, every regression) are detailed.

    Without `ground_truth`, given `truth_sources` (where the images are, ocrlab.image_lookup), the
    `NAME.json` files beside the images are the ground truth when there are any: the command, the
    notebooks and the demo then count the same images as regressed."""
    reader = OutcomeReader(store)
    wanted = None if keys is None else set(keys)
    latest = {v: reader.latest(v, wanted) for v in dict.fromkeys((base, candidate))}
    comparison = Comparison(base, candidate, ground_truth=str(ground_truth) if ground_truth else None,
                            shown=shown, reader=reader)
    for version in latest:
        if not latest[version]:
            known = store.versions()
            comparison.warnings.append(f"no outcomes under version {version!r}; versions in the store: "
                                       + (", ".join(known) or "none"))
    revised = [k for k, side in latest[candidate].items()
               if (other := latest[base].get(k)) and other.content and side.content and other.content != side.content]
    if revised:  # the image changed between the runs: its change is not the version's alone
        comparison.warnings.append(
            f"{len(revised)} image(s) were read from other content under {candidate} than under {base} "
            f"(new revisions under the same key, e.g. {revised[0]!r}): their changes are not the version's alone")
    found = sorted(latest[base].keys() | latest[candidate].keys())
    comparison.images = [_image(k, latest[base].get(k), latest[candidate].get(k)) for k in found]
    del latest
    if ground_truth is None and truth_sources is not None:
        from ocrlab.image_lookup import truth_folder
        ground_truth = truth_folder((i.image_key for i in comparison.images), truth_sources)
        comparison.ground_truth = str(ground_truth) if ground_truth else None
    if ground_truth is not None:
        _score(comparison, GroundTruth(ground_truth))
    sections = comparison.sections()
    comparison.detail(i for name, s in sections.items() if name != "one_sided" for i in s.shown)
    return comparison


def field_labels(scores: list[tuple[str, bool]]) -> list[str]:
    """Names with the entry's number (`entries[2].hours`, counted from 1) for `score_fields`' list, in order."""
    labels, n = [], 0
    for name, _ in scores:
        if name.startswith("entry."):
            labels.append(f"entries[{n // len(ENTRY_FIELDS) + 1}].{name[6:]}")
            n += 1
        else:
            labels.append(name)
    return labels


def _score(comparison: Comparison, truth: GroundTruth) -> None:
    """Field accuracy of both versions over the images with ground truth (their parsed timesheets read by key)."""
    scored_images = [i for i in comparison.images if truth.get(i.image_key) is not None]
    if comparison.reader is not None:
        comparison.reader.read_parsed((i.image_key, s) for i in scored_images for s in (i.base, i.candidate) if s)
    accuracy = {"base": FieldAccuracy(), "candidate": FieldAccuracy()}
    for item in scored_images:
        reference = truth.get(item.image_key)
        scored: dict[str, list[tuple[str, bool]]] = {}
        for name, side in (("base", item.base), ("candidate", item.candidate)):
            if side is not None:
                scored[name] = score_fields(reference, side.parsed)  # type: ignore[arg-type]
                accuracy[name].add(scored[name])
                setattr(item, f"{name}_fields", (sum(ok for _, ok in scored[name]), len(scored[name])))
        if len(scored) == 2:
            pairs = list(zip(field_labels(scored["base"]), scored["base"], scored["candidate"]))
            item.fields_lost = [label for label, (_, b), (_, c) in pairs if b and not c]
            item.fields_gained = [label for label, (_, b), (_, c) in pairs if c and not b]
    comparison.field_accuracy = accuracy
    comparison._order = None  # fields lost and gained move images between groups
    comparison.warnings += truth.problems
    if not accuracy["base"].images and not accuracy["candidate"].images:
        comparison.warnings.append(f"no image matched a NAME.json in {str(truth.folder)!r}")
