"""Tesseract through its command-line binary (apt-get install tesseract-ocr): an optional local engine."""
from __future__ import annotations

import os
import shutil
import subprocess

from ocrlab.errors import OCRError, TesseractMissing
from ocrlab.ocr.engines.base import Engine, EngineResult, ImageLimits, PreparedImage


class TesseractEngine(Engine):
    name = "tesseract"
    output_kind = "text"
    # Leptonica reads both from stdin; 32767 px is tesseract's own limit per side.
    limits = ImageLimits(formats=frozenset({"png", "jpeg"}), max_bytes=50_000_000, max_side=32000)

    def __init__(self, binary: str = "tesseract", psm: int = 6, lang: str = "eng",
                 timeout: float = 120.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise TesseractMissing()
        self.binary, self.psm, self.lang, self.timeout = path, psm, lang, timeout
        try:
            first = subprocess.run([path, "--version"], capture_output=True, text=True,
                                   timeout=30).stdout.split("\n", 1)[0]
        except (OSError, subprocess.SubprocessError) as exc:
            raise OCRError(f"tesseract --version failed: {exc}", code=type(exc).__name__) from exc
        version = first.split()[-1] if first.strip() else "unknown"
        self.model_id = f"tesseract-{version}"
        # One tesseract per image already fills a core; its OpenMP threads only add contention
        # when a batch runs several images at once.
        self._env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}

    def _recognize(self, image: PreparedImage) -> EngineResult:
        # --psm 6: one uniform block of text, which keeps each table row on one line.
        cmd = [self.binary, "stdin", "stdout", "--psm", str(self.psm), "-l", self.lang]
        try:
            proc = subprocess.run(cmd, input=image.data, capture_output=True, timeout=self.timeout,
                                  env=self._env, check=True)
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise OCRError(f"tesseract exited with {exc.returncode}: {detail[0]}",
                           code="CalledProcessError") from exc
        except subprocess.TimeoutExpired as exc:
            raise OCRError(f"tesseract took longer than {self.timeout:g} s", code="TimeoutExpired") from exc
        except OSError as exc:
            raise OCRError(f"tesseract could not run: {exc}", code=type(exc).__name__) from exc
        text = proc.stdout.decode("utf-8", "replace")
        # Tesseract separates blocks with blank lines and ends pages with a form feed.
        lines = [ln.rstrip() for ln in text.replace("\f", "\n").splitlines() if ln.strip()]
        return EngineResult(raw_output="\n".join(lines), model_id=self.model_id,
                            details={"psm": self.psm, "lang": self.lang})
