"""Image preprocessing: a configurable stage between preflight and the engine, off by default.

Steps, each on or off, applied in this order to the grayscale page:
- `contrast`: the page divided by its own background (a wide blur of the paper), then the
  range stretched so paper is white and print is black. This flattens uneven lighting and
  shadows, and fades pale ink (a stamp) that engines otherwise read into the cells under it.
- `denoise`: a 3x3 median, which removes sensor specks and JPEG mosquito noise but keeps
  strokes (a Gaussian would blur the separators engines already lose: "08:00" -> "0800").
- `deskew`: the angle in +-`max_skew` degrees whose horizontal projection of dark pixels is
  sharpest, undone by rotation; a table on a tilted page otherwise reads rows into each other.
- `upscale_min_height`: when the median height of the letters is below this many pixels,
  the page is enlarged (cubic) to bring it there, at most 3x and never past the engine's
  limits. Small text is where engines confuse 5 and 6, 1 and 7.

`Preprocess.from_json('{"deskew": true, ...}')` builds the settings (unknown keys are a one-line
error); `apply(image, settings, limits)` is a pure function of the bytes. The settings are
recorded on every record (attribute `Preprocessing`) so a comparison shows what ran.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
from PIL import Image

from ocrlab.errors import MissingDependency, PreprocessError
from ocrlab.ocr.engines.base import ImageLimits, PreparedImage

MAX_UPSCALE = 3.0


@dataclass(frozen=True)
class Preprocess:
    deskew: bool = False
    denoise: bool = False
    contrast: bool = False
    upscale_min_height: int = 0   # pixels; 0 leaves the size alone
    max_skew: float = 6.0         # degrees searched either way by deskew

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PreprocessError(f"unknown preprocessing setting(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(known)}")
        defaults = cls()
        for name, value in data.items():
            flag = isinstance(getattr(defaults, name), bool)
            if isinstance(value, bool) != flag or not isinstance(value, (int, float)):
                kind = "true or false" if flag else "a number"
                raise PreprocessError(f"preprocessing setting {name} must be {kind}, got {json.dumps(value)}")
        settings = replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in data.items()})
        if settings.upscale_min_height < 0 or not 0 <= settings.max_skew <= 45:
            raise PreprocessError("upscale_min_height must be >= 0 and max_skew within 0..45")
        return settings

    @classmethod
    def from_json(cls, text: str) -> Preprocess:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PreprocessError(f"preprocessing settings are not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PreprocessError("preprocessing settings must be a JSON object, e.g. '{\"deskew\": true}'")
        return cls.from_dict(data)

    def to_json(self) -> str:
        """The stored form: every setting, sorted keys."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def enabled(self) -> bool:
        return self.deskew or self.denoise or self.contrast or self.upscale_min_height > 0


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise MissingDependency("opencv-python-headless", "local") from None
    return cv2


def _contrast(cv2: Any, page: np.ndarray) -> np.ndarray:
    # The background is the page with the print closed over: a dilation (max) wider than a stroke.
    background = cv2.dilate(page, np.ones((15, 15), np.uint8))
    background = cv2.blur(background, (31, 31)).astype(np.float32) + 1.0
    ratio = page.astype(np.float32) / background
    # Print is under ~0.5 of its background, pale stamp ink ~0.7-0.85: the ramp between 0.2 and
    # 0.85 whitens the paler marks and keeps the grey edges of small print (a harder cut thins
    # strokes until points and colons vanish: measured, it cost more cells than it saved).
    out = np.clip((ratio - 0.2) / (0.85 - 0.2), 0.0, 1.0)
    return (out * 255).astype(np.uint8)


def _ink(page: np.ndarray) -> np.ndarray:
    """Dark pixels: Otsu-free, since after `contrast` paper is 255 and print well below."""
    return page < min(160, int(np.percentile(page, 50)) - 40)


def skew_angle(page: np.ndarray, max_skew: float) -> float:
    """Degrees to rotate the page by (counter-clockwise positive) to level its lines."""
    cv2 = _cv2()
    scale = min(1.0, 800 / max(page.shape))
    small = cv2.resize(page, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ink = _ink(small).astype(np.float32)
    h, w = ink.shape
    centre = (w / 2, h / 2)

    def sharpness(angle: float) -> float:
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        rotated = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        rows = rotated.sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    best, step = 0.0, 1.0
    candidates = np.arange(-max_skew, max_skew + 1e-9, step)
    while step >= 0.1:
        best = max(candidates, key=sharpness)
        step /= 4
        candidates = np.arange(best - 4 * step, best + 4 * step + 1e-9, step)
    return float(best)


def _letter_height(cv2: Any, page: np.ndarray) -> float | None:
    count, _, stats, _ = cv2.connectedComponentsWithStats(_ink(page).astype(np.uint8), connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    letters = heights[(heights >= 4) & (heights <= 200) & (widths <= heights * 3)]
    return float(np.median(letters)) if len(letters) >= 10 else None


def apply(image: PreparedImage, settings: Preprocess, limits: ImageLimits) -> PreparedImage:
    """The image after the steps `settings` turns on, as PNG; unchanged when none is on."""
    if not settings.enabled:
        return image
    cv2 = _cv2()
    with Image.open(io.BytesIO(image.data)) as img:
        page = np.asarray(img.convert("L"))
    if settings.contrast:
        page = _contrast(cv2, page)
    if settings.denoise:
        page = cv2.medianBlur(page, 3)
    if settings.deskew:
        angle = skew_angle(page, settings.max_skew)
        if abs(angle) >= 0.2:
            h, w = page.shape
            m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
            m[0, 2] += nw / 2 - w / 2
            m[1, 2] += nh / 2 - h / 2
            paper = int(np.percentile(page, 90))
            page = cv2.warpAffine(page, m, (nw, nh), flags=cv2.INTER_CUBIC, borderValue=paper)
    if settings.upscale_min_height:
        height = _letter_height(cv2, page)
        if height and height < settings.upscale_min_height:
            factor = min(MAX_UPSCALE, settings.upscale_min_height / height, limits.max_side / max(page.shape))
            if factor > 1.05:
                page = cv2.resize(page, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    out = io.BytesIO()
    Image.fromarray(page, "L").save(out, "PNG")
    data = out.getvalue()
    if len(data) > limits.max_bytes:  # never hand the engine more than it takes: keep the original
        return image
    return PreparedImage(data=data, format="png", width=page.shape[1], height=page.shape[0],
                         original_bytes=image.original_bytes, original_format=image.original_format,
                         converted=True)
