"""Synthetic reference timesheets with ground truth, and a set of broken inputs.

Output is a pure function of the seed and the damage level: randomness comes from
`random.Random` seeded per file, so the same seed gives the same bytes on every machine with
the same package versions and fonts (`sample_fonts`: a face that is not installed is replaced,
with a note); `portable` prints every form in the DejaVu face of its kind, which ships with
matplotlib, so the set is the same on every machine (the demo's, whose figures the README quotes). Each sample is seeded by its own name, so `timesheet-003.png` is identical
whatever `count` is. Scan damage (`scan_damage`): `none`, `light` (the default) or `heavy`.

Beside every timesheet image `NAME.<ext>`: `NAME.json` (the parsed form) and `NAME.txt`
(the printed lines, cells joined by one space, for CER/WER). `manifest.json` lists every image
file with the outcome expected from a batch ("OK" or a FailureType) and why; a timesheet's
entry also names its typeface, damage level and each effect applied to it.
"""
from __future__ import annotations

import io
import json
import random
import struct
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrlab.files import write_bytes, write_text
from ocrlab.samples import damage as scan_damage
from ocrlab.samples import fonts as sample_fonts

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
FIRST_NAMES = ("Maria", "James", "Aisha", "Wei", "Olga", "Carlos", "Priya", "Tom", "Fatima",
               "Lukas", "Grace", "Mateo", "Hannah", "Kenji", "Sofia", "David", "Amara", "Noah",
               "Elena", "Samuel", "Chloe", "Ravi", "Ingrid", "Peter")
LAST_NAMES = ("Gonzalez", "Smith", "Okafor", "Zhang", "Petrova", "Silva", "Patel", "Walker",
              "Haddad", "Becker", "Nguyen", "Morales", "Brown", "Tanaka", "Rossi", "Miller",
              "Mensah", "Johnson", "Novak", "Harris", "Martin", "Kumar", "Larsen", "Evans")
HEADERS = ("Northwind Logistics", "Harbor Freight Services", "Riverside Facilities Team",
           "Department: Receiving", "Site: North Yard", "Payroll copy", "Form TS-7")
FOOTERS = ("Employee signature: ____________", "Supervisor approval: ____________",
           "Submit by Monday noon", "Page 1 of 1", "Questions? Contact payroll")


# --- content ---------------------------------------------------------------------------------

def _fmt_hours(h: float) -> str:
    """8 -> '8.0', 8.5 -> '8.5', 7.75 -> '7.75' (as a payroll form prints them)."""
    s = f"{h:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class _Sheet:
    truth: dict[str, Any]
    rows: list[list[str]]  # printed table cells, one list per row
    total_text: str


def _make_sheet(rng: random.Random, span_new_year: bool = False) -> _Sheet:
    """A valid timesheet: 3-7 days of the week ending on week_ending, hours = span - break."""
    if span_new_year:  # a week that starts in December: dates must get the previous year
        week_ending = date(rng.choice((2025, 2026)), 1, rng.randint(1, 3))
        offsets = list(range(rng.randint(3, 7)))
    else:
        week_ending = date(2024, 1, 5) + timedelta(days=rng.randint(0, 900))
        offsets = sorted(rng.sample(range(7), rng.randint(3, 7)))
    first = week_ending - timedelta(days=6)
    entries: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    for off in offsets:
        day = first + timedelta(days=off)
        start = 6 * 60 + 15 * rng.randint(0, 16)
        span = 15 * rng.randint(16, 40)
        brk = rng.choice((0, 30, 30, 45, 60)) if span > 300 else 0
        hours = (span - brk) / 60
        entries.append({"date": day.isoformat(), "time_in": _hhmm(start),
                        "time_out": _hhmm(start + span), "hours": hours})
        rows.append([f"{DAY_NAMES[day.weekday()]} {day.month:02d}/{day.day:02d}",
                     _hhmm(start), _hhmm(start + span), _fmt_hours(hours)])
    total = round(sum(e["hours"] for e in entries), 2)
    truth = {"employee_name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
             "employee_id": f"{rng.choice('EETC')}-{rng.randint(10000, 99999)}",
             "week_ending": week_ending.isoformat(), "entries": entries, "total_hours": total}
    return _Sheet(truth, rows, _fmt_hours(total))


# --- rendering -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Style:
    """How one form is printed: typeface, size, line pitch, cell gaps and table rules."""

    face: sample_fonts.Face
    size: int
    pitch: int
    gap: tuple[float, float]  # cell gap range, in font sizes
    grid: bool                # rules between rows and columns, as on a printed form


def _style(rng: random.Random, damage: str, portable: bool = False) -> _Style:
    """Heavy damage also prints tighter: cells a third of a letter apart merge under OCR."""
    face = rng.choice(sample_fonts.CATALOGUE)  # drawn either way: a portable set differs only in its faces
    if portable:
        face = sample_fonts.DEJAVU[face.kind]
    size = rng.randint(22, 30)
    pitch = int(size * rng.uniform(1.5, 2.1))
    tight = damage == "heavy" and rng.random() < 0.5
    grid = damage == "heavy" and rng.random() < 0.4
    return _Style(face, size, pitch, (0.35, 0.8) if tight else (1.2, 3.5), grid)


def _render(rng: random.Random, sheet: _Sheet, damage: str,
            portable: bool = False) -> tuple[Image.Image, list[str], dict[str, Any]]:
    """The sheet drawn as a scan (grayscale), the printed lines, and what the page is made of."""
    style = _style(rng, damage, portable)
    size, pitch = style.size, style.pitch
    font = sample_fonts.load(style.face, size)
    bold = sample_fonts.load(style.face, int(size * 1.3), bold=True)

    def gap() -> int:  # space between cells, varied per form
        return int(size * rng.uniform(*style.gap))
    t = sheet.truth

    # Each printed line: (cells, font); cells placed left to right (table cells in columns).
    lines: list[tuple[list[str], ImageFont.FreeTypeFont]] = []
    lines += [([h], font) for h in rng.sample(HEADERS, rng.randint(0, 2))]
    lines.append((["WEEKLY TIMESHEET"], bold))
    lines.append(([f"Employee: {t['employee_name']}", f"ID: {t['employee_id']}"], font))
    lines.append(([f"Week ending: {t['week_ending']}"], font))
    table_start = len(lines)
    lines.append((["Date", "In", "Out", "Hours"], font))
    lines += [(row, font) for row in sheet.rows]
    table_end = len(lines)
    lines.append(([f"Total hours: {sheet.total_text}"], font))
    lines += [([f], font) for f in rng.sample(FOOTERS, rng.randint(0, 2))]

    columns = [0]
    for col in range(3):  # column x offsets from the widest cell in each column
        widest = max(font.getlength(cells[col]) for cells, _ in lines[table_start:table_end])
        columns.append(columns[-1] + int(widest) + gap())
    margin_x, margin_y = rng.randint(50, 110), rng.randint(50, 110)
    id_gap = gap()
    table_right = margin_x + columns[-1] + int(font.getlength("00.00"))
    width = margin_x * 2 + int(max(
        max(f.getlength(c[0]) + (id_gap + f.getlength(c[1]) if len(c) == 2 else 0) for c, f in lines),
        columns[-1] + font.getlength("00.00")))
    height = margin_y * 2 + pitch * (len(lines) + 1)
    paper = rng.randint(236, 255)
    img = Image.new("L", (width, height), paper)
    draw = ImageDraw.Draw(img)
    ink = rng.randint(0, 60)
    y = margin_y
    table_top, table = 0, (0, 0, width, height)
    for i, (cells, f) in enumerate(lines):
        if i == table_start:
            y += pitch // 2  # a little air above the table
            table_top = y
        if table_start <= i < table_end:
            for x, cell in zip(columns, cells):
                draw.text((margin_x + x, y), cell, font=f, fill=ink)
            if style.grid:  # a rule under every row, and between columns
                rule_y = y + (pitch + size) // 2
                draw.line((margin_x - 8, rule_y, table_right + 8, rule_y), fill=ink + 40, width=2)
            elif i == table_start and rng.random() < 0.5:  # a rule under the table header
                rule_y = y + int(size * 1.3)
                draw.line((margin_x, rule_y, margin_x + columns[-1] + size * 3, rule_y), fill=ink + 60)
        else:
            draw.text((margin_x, y), cells[0], font=f, fill=ink)
            if len(cells) == 2:
                draw.text((margin_x + f.getlength(cells[0]) + id_gap, y), cells[1], font=f, fill=ink)
        y += pitch
        if i == table_end - 1:
            table = (margin_x, table_top, table_right, y)
    if style.grid:
        for x in columns[1:]:
            draw.line((margin_x + x - 6, table[1] - 4, margin_x + x - 6, table[3] - pitch // 2), fill=ink + 40, width=2)
    img, notes = scan_damage.apply(damage, rng, img, paper, table, lambda s: sample_fonts.load(style.face, s, True))
    about = {"font": sample_fonts.resolve(style.face).name, "damage": damage,
             "effects": ["tight columns"] * (style.gap[0] < 1) + ["grid lines"] * style.grid + notes}
    return img, [" ".join(cells) for cells, _ in lines], about


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    formats: dict[str, dict[str, Any]] = {"PNG": {}, "JPEG": {"quality": 90}, "TIFF": {"compression": "tiff_deflate"},
                                          "BMP": {}}
    options = formats[fmt]
    img.save(buf, fmt, **options)
    return buf.getvalue()


# --- files -----------------------------------------------------------------------------------

class _Writer:
    """Writes images, their ground truth and the manifest entries into one folder."""

    def __init__(self, outdir: Path, damage: str, portable: bool = False) -> None:
        self.outdir = outdir
        self.damage = damage
        self.portable = portable
        self.manifest: list[dict[str, Any]] = []

    def raw(self, name: str, data: bytes, expected: str, why: str, **about: Any) -> None:
        write_bytes(data, self.outdir / name)
        self.manifest.append({"file": name, "expected": expected, "why": why, **about})

    def sheet(self, rng: random.Random, name: str, sheet: _Sheet, expected: str, why: str,
              fmt: str = "PNG") -> bytes:
        img, lines, about = _render(rng, sheet, self.damage, self.portable)
        data = _encode(img, fmt)
        self.raw(name, data, expected, why, **about)
        stem = self.outdir / Path(name).stem
        write_text(json.dumps(sheet.truth, indent=2) + "\n", stem.with_suffix(".json"))
        write_text("\n".join(lines) + "\n", stem.with_suffix(".txt"))
        return data


def _white_png_1bit(width: int, height: int) -> bytes:
    """A valid all-white 1-bit PNG written chunk by chunk: Pillow's encoder takes seconds on this."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = (b"\x00" + b"\xff" * ((width + 7) // 8)) * height  # filter byte 0, then white pixels
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(f"{seed}:{name}")  # str seeds hash with SHA-512: stable across runs


INVALID_KINDS = {"total-mismatch": "the entries do not add up to the printed total",
                 "time-order": "one row's time out is before its time in",
                 "date-outside-week": "one row is dated nine days before the week ending"}


def _broken_sheet(rng: random.Random, kind: str) -> _Sheet:
    """A timesheet that reads fine but breaks one rule of the reference timesheet."""
    sheet = _make_sheet(rng)
    while len(sheet.rows) < 3:
        sheet = _make_sheet(rng)
    t, e, row = sheet.truth, sheet.truth["entries"][1], sheet.rows[1]
    if kind == "total-mismatch":
        t["total_hours"] = round(t["total_hours"] + rng.choice((-2.5, -1.0, 1.5, 3.0)), 2)
        sheet.total_text = _fmt_hours(t["total_hours"])
    elif kind == "time-order":  # in and out swapped
        e["time_in"], e["time_out"] = e["time_out"], e["time_in"]
        row[1], row[2] = row[2], row[1]
    elif kind == "date-outside-week":  # the second row dated nine days before the week ended
        day = date.fromisoformat(t["week_ending"]) - timedelta(days=9)
        e["date"] = day.isoformat()
        row[0] = f"{DAY_NAMES[day.weekday()]} {day.month:02d}/{day.day:02d}"
    return sheet


def _no_text_images(rng: random.Random) -> dict[str, Image.Image]:
    """Images an engine answers on but that hold no timesheet."""
    gen = np.random.default_rng(rng.getrandbits(64))
    blank = np.full((1100, 850), 248.0) + gen.normal(0.0, 3.0, (1100, 850))
    # Photo-like: smooth colour blobs (noise upscaled) with grain, no text at all.
    blobs = Image.fromarray(gen.integers(0, 256, (12, 16, 3), dtype=np.uint8), "RGB")
    blobs = blobs.resize((960, 720), Image.Resampling.BICUBIC)
    grain = np.asarray(blobs, dtype=np.float32) + gen.normal(0.0, 10.0, (720, 960, 3))
    return {"bad-blank-page.png": Image.fromarray(np.clip(blank, 0, 255).astype(np.uint8), "L"),
            "bad-noise-photo.png": Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8), "RGB")}


def _not_a_timesheet(rng: random.Random) -> Image.Image:
    """Printed text that is not a timesheet (a memo): the engine reads it, the parser cannot."""
    text = ["MEMO", "To: All warehouse staff", "From: Facilities",
            "The loading dock will be closed for cleaning", "on the first weekend of next month.",
            "Please park in the east lot.", "Thank you for your patience."]
    font = sample_fonts.load(sample_fonts.DEJAVU["sans"], 26)
    img = Image.new("L", (900, 120 + 48 * len(text)), 250)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(text):
        draw.text((70, 60 + 48 * i), line, font=font, fill=20)
    return scan_damage.light(rng, img, 250)


def _bad_set(w: _Writer, seed: int) -> None:
    """Broken files (INPUT_ERROR), odd but valid formats (OK), invalid timesheets, no-text images."""
    good_png = w.sheet(_rng(seed, "format-reference"), "format-reference.png",
                       _make_sheet(_rng(seed, "format-reference-sheet")), "OK",
                       "a clean timesheet, the source of the truncated file")
    w.raw("bad-empty.png", b"", "INPUT_ERROR", "an empty file (0 bytes)")
    w.raw("bad-truncated.png", good_png[: len(good_png) // 2], "INPUT_ERROR",
          "a PNG cut off halfway: the image data cannot be decoded")
    w.raw("bad-text-named-png.png", b"Timesheet for Maria Gonzalez, week ending 2025-10-24.\n"
          b"This is a text file with a .png name.\n", "INPUT_ERROR", "a text file named .png")
    w.raw("bad-decompression-bomb.png", _white_png_1bit(15000, 15000), "INPUT_ERROR",
          "225 megapixels: over the decompression-bomb limit, no conversion fixes it")

    for name, fmt, why in (
            ("format-jpeg-named-png.png", "JPEG", "a valid JPEG under a .png name: the format comes from the bytes"),
            ("format-tiff.tiff", "TIFF", "a valid TIFF: preflight converts it to PNG"),
            ("format-bmp.bmp", "BMP", "a valid BMP: preflight converts it to PNG")):
        w.sheet(_rng(seed, name), name, _make_sheet(_rng(seed, name + "-sheet")), "OK", why, fmt)

    for kind, why in INVALID_KINDS.items():
        name = f"bad-{kind}.png"
        w.sheet(_rng(seed, name), name, _broken_sheet(_rng(seed, name + "-sheet"), kind),
                "VALIDATION_ERROR", why)

    for name, img in _no_text_images(_rng(seed, "no-text")).items():
        w.raw(name, _encode(img, "PNG"), "PARSING_ERROR", "an image with no text: no timesheet to read")
    w.raw("bad-not-a-timesheet.png", _encode(_not_a_timesheet(_rng(seed, "memo")), "PNG"),
          "PARSING_ERROR", "readable text that is not a timesheet")


def generate_samples(outdir: str | Path, count: int = 10, seed: int = 0, bad: bool = False,
                     damage: str = "light", invalid: int = 0, portable: bool = False) -> list[dict[str, Any]]:
    """Write `count` reference timesheets (plus the broken set if `bad`) and manifest.json.

    `damage` is the scan damage of every timesheet image (`scan_damage.LEVELS`); `invalid` adds
    that many timesheets that each break one rule (kinds in turn), the false successes a
    tolerant reader must never produce. `portable` prints in the faces every machine has (DejaVu), so the
    images do not depend on the fonts installed. Returns the manifest: one {"file", "expected", "why",
    ...} per image file written.
    """
    if count < 0 or invalid < 0:
        raise ValueError("count and invalid must be >= 0")
    if damage not in scan_damage.LEVELS:
        raise ValueError(f"damage must be one of {', '.join(scan_damage.LEVELS)}, got {damage!r}")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    w = _Writer(out, damage, portable)
    for i in range(1, count + 1):
        name = f"timesheet-{i:03d}.png"
        # Every fourth sample spans a new year, so dates must resolve to two different years.
        sheet = _make_sheet(_rng(seed, name + "-sheet"), span_new_year=i % 4 == 3)
        w.sheet(_rng(seed, name), name, sheet, "OK", "a valid reference timesheet")
    kinds = list(INVALID_KINDS)
    for i in range(1, invalid + 1):
        name, kind = f"invalid-{i:03d}.png", kinds[(i - 1) % len(kinds)]
        w.sheet(_rng(seed, name), name, _broken_sheet(_rng(seed, name + "-sheet"), kind),
                "VALIDATION_ERROR", INVALID_KINDS[kind])
    if bad:
        _bad_set(w, seed)
    write_text(json.dumps(w.manifest, indent=2) + "\n", out / "manifest.json")
    return w.manifest
