"""What a scanner, a desk and a pen do to a printed timesheet, at three levels.

- `none`: the page as printed.
- `light`: a small skew, a little blur, sensor noise and dust (what the samples always had).
- `heavy`: on top, marks over the table (an ink stamp, pen ticks and scribbles), uneven lighting
  and a shadow, rotation by a few degrees and a shear, blur, low resolution, noise and JPEG
  artefacts. Each effect is drawn with its own probability and strength from the sample's rng,
  and `apply` returns a note per effect so a failure can be traced to what was done to the page.

Damage stays within what a person still reads: the ground truth is the printed truth, so a
sample that no reader could decode would measure nothing.
"""
from __future__ import annotations

import io
import random
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LEVELS = ("none", "light", "heavy")
Box = tuple[int, int, int, int]  # left, top, right, bottom
STAMP_WORDS = ("APPROVED", "RECEIVED", "PAID", "ENTERED", "COPY")


def apply(level: str, rng: random.Random, img: Image.Image, paper: int, table: Box,
          font: Callable[[int], ImageFont.FreeTypeFont]) -> tuple[Image.Image, list[str]]:
    """The damaged page (grayscale) and what was done to it. `table` is where the rows are."""
    if level not in LEVELS:
        raise ValueError(f"damage must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "none":
        return img, []
    if level == "light":
        return light(rng, img, paper), ["light scan noise"]
    notes: list[str] = []
    if rng.random() < 0.5:
        img = _stamp(rng, img, table, font, notes)
    if rng.random() < 0.6:
        img = _pen_marks(rng, img, table, notes)
    if rng.random() < 0.7:
        img = _lighting(rng, img, notes)
    img = _geometry(rng, img, paper, notes)
    radius = rng.uniform(0.4, 1.1)
    img = img.filter(ImageFilter.GaussianBlur(radius))
    notes.append(f"blur {radius:.1f} px")
    if rng.random() < 0.5:
        scale = rng.uniform(0.6, 0.85)
        img = img.resize((int(img.width * scale), int(img.height * scale)), Image.Resampling.BILINEAR)
        notes.append(f"low resolution x{scale:.2f}")
    img = _noise(rng, img, rng.uniform(5.0, 14.0), rng.randint(20, 120))
    if rng.random() < 0.7:
        quality = rng.randint(25, 50)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
        notes.append(f"JPEG quality {quality}")
    return img, notes


def light(rng: random.Random, img: Image.Image, paper: int) -> Image.Image:
    """Mild scanner effects: a small skew, blur, sensor noise and a few specks."""
    img = img.rotate(rng.uniform(-1.0, 1.0), resample=Image.Resampling.BICUBIC, expand=True,
                     fillcolor=paper)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.7)))
    return _noise(rng, img, rng.uniform(2.0, 8.0), rng.randint(0, 30))


def _noise(rng: random.Random, img: Image.Image, sigma: float, specks: int) -> Image.Image:
    """Sensor noise and dust specks."""
    gen = np.random.default_rng(rng.getrandbits(64))
    arr = np.asarray(img, dtype=np.float32) + gen.normal(0.0, sigma, (img.height, img.width))
    for _ in range(specks):
        y, x = gen.integers(0, img.height - 2), gen.integers(0, img.width - 2)
        arr[y:y + 2, x:x + 2] = rng.randint(40, 140)
    return Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), mode="L")


def _darken(img: Image.Image, layer: Image.Image) -> Image.Image:
    """Ink over ink: the darker of page and layer, as a stamp or a pen on paper."""
    return Image.fromarray(np.minimum(np.asarray(img), np.asarray(layer)), mode="L")


def _stamp(rng: random.Random, img: Image.Image, table: Box,
           font: Callable[[int], ImageFont.FreeTypeFont], notes: list[str]) -> Image.Image:
    """A rubber stamp, boxed word and date, pale ink, tilted, landing somewhere on the table."""
    word = rng.choice(STAMP_WORDS)
    f = font(rng.randint(34, 50))
    w, h = int(f.getlength(word)) + 40, int(f.size * 1.6) + 30
    layer = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(layer)
    ink = rng.randint(165, 210)  # a red or blue stamp is pale in grayscale: the print shows through
    draw.rectangle((3, 3, w - 4, h - 4), outline=ink, width=4)
    draw.text((20, 12), word, font=f, fill=ink)
    angle = rng.uniform(-25, 25)
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    left, top, right, bottom = table
    x = rng.randint(left, max(left, right - layer.width // 2))
    y = rng.randint(top, max(top, bottom - layer.height // 2))
    page = Image.new("L", img.size, 255)
    page.paste(layer, (x, y))
    notes.append(f"stamp '{word}' over the table")
    return _darken(img, page)


def _pen_marks(rng: random.Random, img: Image.Image, table: Box, notes: list[str]) -> Image.Image:
    """Ticks at row ends, circled cells and scribbled initials: a reviewer's pen on the table.

    A reviewer marks around the figures, not through them: a mark that struck a digit out
    would make the truth unreadable for any reader.
    """
    left, top, right, bottom = table
    layer = Image.new("L", img.size, 255)
    draw = ImageDraw.Draw(layer)
    ink = rng.randint(30, 110)
    width = rng.randint(2, 3)
    marks = rng.randint(2, 5)
    for _ in range(marks):
        kind = rng.choice(("tick", "scribble", "circle"))
        y = rng.randint(top, bottom)
        if kind == "tick":  # beside the hours column
            x, s = right + rng.randint(-10, 30), rng.randint(12, 22)
            draw.line([(x, y), (x + s // 2, y + s // 2), (x + s * 2, y - s)], fill=ink, width=width)
        elif kind == "scribble":  # initials in the table's right margin
            points = [(right + rng.randint(0, 40), y)]
            for _ in range(rng.randint(4, 9)):
                px, py = points[-1]
                points.append((px + rng.randint(6, 18), py + rng.randint(-14, 14)))
            draw.line(points, fill=ink, width=width, joint="curve")
        else:  # a loose ring around a cell
            x, rx, ry = rng.randint(left + 60, right), rng.randint(60, 90), rng.randint(24, 32)
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), outline=ink, width=width)
    notes.append(f"{marks} pen marks over the table")
    return _darken(img, layer)


def _lighting(rng: random.Random, img: Image.Image, notes: list[str]) -> Image.Image:
    """A brightness gradient across the page and a soft shadow along one edge (a fold, a thumb)."""
    h, w = img.height, img.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    gain = 1.0 - rng.uniform(0.15, 0.4) * ramp
    edge = rng.choice(("left", "right", "top", "bottom"))
    depth = rng.uniform(0.06, 0.16) * (w if edge in ("left", "right") else h)
    distance = {"left": xx, "right": w - 1 - xx, "top": yy, "bottom": h - 1 - yy}[edge]
    gain *= 1.0 - rng.uniform(0.3, 0.55) * np.clip(1.0 - distance / depth, 0.0, 1.0) ** 2
    arr = np.asarray(img, dtype=np.float32) * gain
    notes.append(f"uneven lighting, shadow on the {edge} edge")
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")


def _geometry(rng: random.Random, img: Image.Image, paper: int, notes: list[str]) -> Image.Image:
    """Rotation by a few degrees, either way, and a slight shear (a page fed askew)."""
    angle = rng.choice((-1, 1)) * rng.uniform(1.0, 4.0)
    shear = rng.uniform(-0.02, 0.02)
    img = img.transform(img.size, Image.Transform.AFFINE, (1, shear, -shear * img.height / 2, 0, 1, 0),
                        resample=Image.Resampling.BICUBIC, fillcolor=paper)
    img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    notes.append(f"rotated {angle:+.1f} deg, shear {shear:+.3f}")
    return img
