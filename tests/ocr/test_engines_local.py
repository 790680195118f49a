"""The local engines, for real, on generated reference timesheets (no mocks)."""
from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from ocrlab.errors import OCRError, ParsingError, ValidationFailure
from ocrlab.ocr.engines import EngineResult, PreparedImage, get_engine
from ocrlab.samples.generate import generate_samples
from ocrlab.timesheet.model import check, parse_text

CLEAN = 8
HEADER_FIELDS = ("employee_name", "employee_id", "week_ending", "total_hours")
ENTRY_FIELDS = ("date", "time_in", "time_out", "hours")


def prepared(path: Path) -> PreparedImage:
    """What preflight would hand over for a PNG sample (built here so this test stands alone)."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        w, h = img.size
    return PreparedImage(data=data, format="png", width=w, height=h, original_bytes=len(data),
                         original_format="png")


def field_hits(truth: dict, text: str) -> tuple[int, int]:
    """(fields read exactly right, fields in the ground truth); an unparsable page scores 0."""
    entries = [(e, f) for e in range(len(truth["entries"])) for f in ENTRY_FIELDS]
    total = len(HEADER_FIELDS) + len(entries)
    try:
        got = parse_text(text)
    except ParsingError:
        return 0, total
    hits = sum(got[f] == truth[f] for f in HEADER_FIELDS)
    hits += sum(e < len(got["entries"]) and got["entries"][e][f] == truth["entries"][e][f] for e, f in entries)
    return hits, total


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    generate_samples(out, count=CLEAN, seed=42, bad=True)
    return out


def accuracy(run, samples: Path) -> tuple[float, float, list[str]]:
    hits = total = 0
    seconds, misses = [], []
    for i in range(1, CLEAN + 1):
        path = samples / f"timesheet-{i:03d}.png"
        result = run(path)
        seconds.append(result.processing_time)
        h, t = field_hits(json.loads(path.with_suffix(".json").read_text()), result.raw_output)
        hits, total = hits + h, total + t
        if h < t:
            misses.append(f"{path.name}: {t - h} of {t} fields wrong\n{result.raw_output}")
    return hits / total, sum(seconds) / len(seconds), misses


# --- rapidocr ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rapid(samples):
    """One engine for the module; its first run (which loads the models) must not try a download."""
    pytest.importorskip("rapidocr")
    from rapidocr.utils import download_file

    def no_download(*args, **kwargs):
        raise AssertionError("rapidocr tried to download a model")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download_file.DownloadFile, "run", classmethod(no_download))
        engine = get_engine("rapidocr")
        engine.run(prepared(samples / "bad-blank-page.png"))
    return engine


@pytest.fixture(scope="module")
def rapid_run(rapid):
    """Each sample is recognised once per module: the OCR is the slow part of these tests."""
    cache: dict[Path, EngineResult] = {}

    def run(path: Path) -> EngineResult:
        if path not in cache:
            cache[path] = rapid.run(prepared(path))
        return cache[path]
    return run


def test_rapidocr_reads_clean_samples(rapid_run, samples):
    score, seconds, misses = accuracy(rapid_run, samples)
    print(f"\nrapidocr: {score:.1%} of fields exact over {CLEAN} samples, {seconds:.2f} s per image")
    assert score >= 0.95, "\n\n".join(misses)


def test_rapidocr_result_fields(rapid, rapid_run, samples):
    result = rapid_run(samples / "timesheet-002.png")
    assert rapid.model_id.startswith("rapidocr-3.") and rapid.model_id.endswith("/PP-OCRv6_small")
    assert result.model_id == rapid.model_id and result.processing_time > 0
    assert 0.5 < result.details["mean_confidence"] <= 1.0
    assert result.input_tokens is None and result.output_tokens is None
    assert result.raw_output.splitlines()[0] != "" and "Total hours" in result.raw_output


def test_rapidocr_models_come_from_the_wheel(rapid):
    import rapidocr
    wheel_models = Path(rapidocr.__file__).parent / "models"
    cfg = rapid._ocr.cfg
    for stage in (cfg.Det, cfg.Rec):
        assert Path(stage.model_path).parent == wheel_models


@pytest.mark.parametrize("name, rule", [
    ("bad-total-mismatch.png", "total_mismatch"),
    ("bad-time-order.png", "time_order"),
    ("bad-date-outside-week.png", "date_out_of_week"),
])
def test_rapidocr_invalid_timesheets_fail_validation(rapid_run, samples, name, rule):
    text = rapid_run(samples / name).raw_output
    with pytest.raises(ValidationFailure) as info:
        check(parse_text(text))
    assert [e.split(":")[0] for e in info.value.validation_errors] == [rule]


@pytest.mark.parametrize("name", ["bad-blank-page.png", "bad-not-a-timesheet.png"])
def test_rapidocr_page_without_a_timesheet_is_a_parsing_error(rapid_run, samples, name):
    result = rapid_run(samples / name)
    with pytest.raises(ParsingError):
        parse_text(result.raw_output)


def test_rapidocr_engine_failure_is_an_ocr_error(rapid):
    junk = PreparedImage(data=b"not an image", format="png", width=1, height=1, original_bytes=12,
                         original_format="png")
    with pytest.raises(OCRError) as info:
        rapid.run(junk)
    assert info.value.code == "UnidentifiedImageError"
    assert info.value.processing_time >= 0


def test_group_lines_keeps_rows_of_a_skewed_page_together():
    from ocrlab.ocr.engines.rapid import group_lines

    def box(x, y, w, slope=0.02, h=20):  # a 1.1 degree skew: 1000 px wide rows drift by 20 px
        return [[x, y + slope * x], [x + w, y + slope * (x + w)], [x + w, y + h + slope * (x + w)],
                [x, y + h + slope * x]]
    boxes = [box(900, 100, 60), box(0, 100, 120), box(0, 140, 120), box(400, 100, 80), box(400, 140, 80)]
    texts = ["8.0", "Mon 10/20", "Tue 10/21", "08:00", "08:30"]
    assert group_lines(boxes, texts) == ["Mon 10/20  08:00  8.0", "Tue 10/21  08:30"]
    assert group_lines([], []) == []


# --- tesseract ---------------------------------------------------------------------------------

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="tesseract binary not installed (apt-get install tesseract-ocr)")


@needs_tesseract
def test_tesseract_reads_clean_samples(samples):
    engine = get_engine("tesseract")
    assert engine.model_id.startswith("tesseract-")
    started = time.perf_counter()
    score, seconds, misses = accuracy(lambda path: engine.run(prepared(path)), samples)
    print(f"\ntesseract {engine.model_id}: {score:.1%} of fields exact over {CLEAN} samples, "
          f"{seconds:.2f} s per image ({time.perf_counter() - started:.1f} s)")
    # Tesseract is the weaker engine on skewed, noisy scans; the bound catches a broken pipeline.
    assert score >= 0.6, "\n\n".join(misses)


@needs_tesseract
def test_tesseract_failure_is_an_ocr_error():
    junk = PreparedImage(data=b"not an image", format="png", width=1, height=1, original_bytes=12,
                         original_format="png")
    with pytest.raises(OCRError) as info:
        get_engine("tesseract").run(junk)
    assert info.value.code == "CalledProcessError"


def test_missing_tesseract_binary_says_how_to_install():
    from ocrlab.errors import OcrlabError
    from ocrlab.ocr.engines.tesseract import TesseractEngine
    with pytest.raises(OcrlabError, match="apt-get install tesseract-ocr"):
        TesseractEngine(binary="no-such-tesseract-binary")
