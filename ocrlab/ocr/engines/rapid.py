"""RapidOCR (PP-OCR models run by onnxruntime): the local default engine.

The models ship inside the rapidocr wheel (rapidocr/models). Their paths are passed explicitly,
so rapidocr never reaches its download code; a wheel without them is a MissingDependency.
"""
from __future__ import annotations

import io
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PIL import Image

from ocrlab.errors import MissingDependency, OCRError
from ocrlab.ocr.engines.base import Engine, EngineResult, ImageLimits, PreparedImage

if TYPE_CHECKING:
    from rapidocr.utils.output import RapidOCROutput

OCR_VERSION, MODEL_TYPE = "PP-OCRv6", "small"
MODEL_FILES = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
               "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}

# Tuned on the reference samples (2 CPU cores; 100% of fields right either way, the time differs):
# - no 0/180 degree classifier: scans are upright, it only costs time (and can flip a line);
# - recognition crops padded to a minimum width of 96 px instead of 320: table cells such as
#   "8.5" are short, and padding each to 320 px made recognition ~40% slower for nothing;
# - detection input capped at 1280 px on the long side ("max"), so a 300-dpi page is not
#   detected at full size, while small digits on a typical form stay legible.
DEFAULT_PARAMS: dict[str, Any] = {
    "Global.use_cls": False,
    "Global.log_level": "error",
    "Global.max_side_len": 2000,
    "Det.limit_type": "max",
    "Det.limit_side_len": 1280,
    "Rec.rec_img_shape": [3, 48, 96],
}


def _box_geometry(box: Any) -> tuple[float, float, float, float, float, float]:
    """(left, right, centre x, centre y, height, top-edge slope) of a 4-point box (tl, tr, br, bl)."""
    tl, tr, br, bl = (np.asarray(p, dtype=float) for p in box)
    dx = tr[0] - tl[0]
    slope = (tr[1] - tl[1]) / dx if dx > 1 else 0.0
    height = float(np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    cx, cy = (tl + tr + br + bl) / 4
    return float(min(tl[0], bl[0])), float(max(tr[0], br[0])), float(cx), float(cy), height, float(slope)


def group_lines(boxes: Any, texts: Any, column_gap: float = 1.5) -> list[str]:
    """Recognised boxes as visual lines, top to bottom, each left to right.

    Centres are de-skewed with the page's median slope before clustering, so the cells of one
    row on a slightly rotated scan stay on one line. Boxes more than `column_gap` line heights
    apart are joined by two spaces (a column gap), others by one.
    """
    items = [(*_box_geometry(box), str(text).strip()) for box, text in zip(boxes, texts)]
    items = [it for it in items if it[-1]]
    if not items:
        return []
    slope = float(np.median([it[5] for it in items]))
    height = float(np.median([it[4] for it in items]))
    rows: list[list[tuple[float, float, str]]] = []
    row_y: list[float] = []  # running mean of each row's de-skewed centre
    for left, right, cx, cy, _, _, text in sorted(items, key=lambda it: it[3] - slope * it[2]):
        y = cy - slope * cx
        if rows and abs(y - row_y[-1]) <= 0.5 * height:
            rows[-1].append((left, right, text))
            row_y[-1] += (y - row_y[-1]) / len(rows[-1])
        else:
            rows.append([(left, right, text)])
            row_y.append(y)
    lines = []
    for row in rows:
        row.sort()
        parts = [row[0][2]]
        for prev, cur in zip(row, row[1:]):
            parts += ["  " if cur[0] - prev[1] > column_gap * height else " ", cur[2]]
        lines.append("".join(parts))
    return lines


class RapidOCREngine(Engine):
    name = "rapidocr"
    output_kind = "text"
    limits = ImageLimits(formats=frozenset({"png", "jpeg"}), max_bytes=50_000_000, max_side=8000)

    def __init__(self, params: dict[str, Any] | None = None, threads: int | None = None) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
        except ImportError:
            raise MissingDependency("rapidocr", "local") from None
        model_dir = Path(rapidocr.__file__).parent / "models"
        paths = {stage: model_dir / f for stage, f in MODEL_FILES.items()}
        absent = [str(p) for p in paths.values() if not p.is_file()]
        if absent:  # never let rapidocr fall back to downloading them
            raise MissingDependency("rapidocr models (" + ", ".join(absent) + ")", "local")
        settings = {**DEFAULT_PARAMS, **(params or {})}
        # Worker processes of a batch share the cores: each gets its slice (given by the batch, or
        # OCRLAB_ENGINE_THREADS through its edge), instead of every onnxruntime session spinning a
        # thread per core.
        if threads:
            settings["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
            settings["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
        settings.update({f"{stage}.model_path": str(p) for stage, p in paths.items()})
        self._ocr = RapidOCR(params=settings)
        # One engine object may serve several threads of a batch. onnxruntime already spreads one
        # call over every core, so concurrent calls would only oversubscribe them: serialise.
        self._lock = threading.Lock()
        self.model_id = f"rapidocr-{metadata.version('rapidocr')}/{OCR_VERSION}_{MODEL_TYPE}"

    def _recognize(self, image: PreparedImage) -> EngineResult:
        try:
            with Image.open(io.BytesIO(image.data)) as img:
                pixels = np.asarray(img.convert("RGB"))[:, :, ::-1].copy()  # rapidocr wants BGR
            with self._lock:
                out = cast("RapidOCROutput", self._ocr(pixels))  # the whole pipeline (det, cls, rec) ran
        except Exception as exc:
            raise OCRError(f"rapidocr failed: {exc}", code=type(exc).__name__) from exc
        boxes, texts = out.boxes, out.txts
        scores = cast("tuple[float, ...]", out.scores)  # given with the texts
        if boxes is None or texts is None or len(texts) == 0:
            return EngineResult(raw_output="", model_id=self.model_id,
                                details={"mean_confidence": None, "boxes": 0})
        lines = group_lines(boxes, texts)
        return EngineResult(raw_output="\n".join(lines), model_id=self.model_id,
                            details={"mean_confidence": round(float(np.mean(scores)), 4),
                                   "boxes": len(texts)})
