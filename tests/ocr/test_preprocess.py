"""Image preprocessing: its settings, each step on a page where the step has something to do,
and the stage in the pipeline (real rapidocr, real store) recording what ran."""
from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocrlab.errors import PreprocessError
from ocrlab.ocr.engines import get_engine
from ocrlab.ocr.engines.base import ImageLimits, PreparedImage
from ocrlab.ocr.pipeline import Pipeline
from ocrlab.ocr.preprocess import Preprocess, apply, skew_angle
from ocrlab.runs.batch import Job
from ocrlab.samples import fonts as sample_fonts
from ocrlab.version import OCRVersionInfo

ALL_ON = Preprocess(contrast=True, denoise=True, deskew=True, upscale_min_height=24)
LIMITS = ImageLimits()


def page(size: int = 26, lines: int = 8) -> Image.Image:
    img = Image.new("L", (900, 60 + lines * size * 2), 245)
    draw = ImageDraw.Draw(img)
    font = sample_fonts.load(sample_fonts.DEJAVU["sans"], size)
    for i in range(lines):
        draw.text((40, 30 + i * size * 2), f"Mon 10/2{i} 08:00 16:30 8.0 row {i}", font=font, fill=20)
    return img


def prepared(img: Image.Image) -> PreparedImage:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return PreparedImage(buf.getvalue(), "png", img.width, img.height, len(buf.getvalue()), "png")


def pixels(image: PreparedImage) -> np.ndarray:
    with Image.open(io.BytesIO(image.data)) as img:
        return np.asarray(img.convert("L"))


# --- settings ---------------------------------------------------------------------------------

def test_settings_from_json_and_back():
    settings = Preprocess.from_json('{"deskew": true, "upscale_min_height": 20}')
    assert settings == Preprocess(deskew=True, upscale_min_height=20) and settings.enabled
    assert Preprocess.from_json(settings.to_json()) == settings
    assert not Preprocess.from_json("{}").enabled


@pytest.mark.parametrize("text, named", [
    ('{"deskw": true}', "unknown preprocessing setting(s) deskw; known: deskew"),
    ('{"deskew": 1}', "deskew must be true or false"),
    ('{"upscale_min_height": true}', "upscale_min_height must be a number"),
    ('{"upscale_min_height": -4}', "upscale_min_height must be >= 0"),
    ("[1]", "must be a JSON object"),
    ("{deskew}", "not JSON"),
])
def test_bad_settings_are_one_line_errors(text, named):
    with pytest.raises(PreprocessError) as info:
        Preprocess.from_json(text)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_the_cli_refuses_bad_settings_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ocrlab", "batch", str(tmp_path), "--preprocess", '{"blur": 2}'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "unknown preprocessing setting" in out.stderr


def test_a_batch_job_with_preprocessing_pickles():
    job = Job("rapidocr", "{}", OCRVersionInfo("2.1.0", "2025-11-02", "t"), "t", "owner", 0.0, preprocess=ALL_ON)
    assert pickle.loads(pickle.dumps(job)) == job and hash(job) == hash(pickle.loads(pickle.dumps(job)))


# --- steps ------------------------------------------------------------------------------------

def test_nothing_on_returns_the_image_itself():
    image = prepared(page())
    assert apply(image, Preprocess(), LIMITS) is image


@pytest.mark.parametrize("angle", [-3.5, 2.0, 5.0])
def test_deskew_finds_and_undoes_the_tilt(angle):
    tilted = page().rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=245)
    assert skew_angle(np.asarray(tilted), 6.0) == pytest.approx(-angle, abs=0.3)
    level = pixels(apply(prepared(tilted), Preprocess(deskew=True), LIMITS))
    assert skew_angle(level, 6.0) == pytest.approx(0.0, abs=0.3)


def test_contrast_flattens_a_shadow_and_fades_a_pale_stamp():
    img = np.asarray(page(), dtype=np.float32)
    gradient = np.linspace(1.0, 0.6, img.shape[1])[None, :]  # light falling off to the right
    shaded = img * gradient
    shaded[10:60, 600:800] = np.minimum(shaded[10:60, 600:800], 215 * gradient[:, 600:800])  # pale ink
    out = pixels(apply(prepared(Image.fromarray(shaded.astype(np.uint8), "L")), Preprocess(contrast=True), LIMITS))
    paper = out[img > 200]
    assert paper.mean() > 245 and paper.std() < 12          # one white, left to right
    assert out[10:60, 600:800][img[10:60, 600:800] > 200].mean() > 235   # the stamp is gone
    assert out[img < 60].mean() < 80                         # the print is still black


def test_upscale_enlarges_small_text_within_the_engine_limits():
    small = page(size=11)
    out = apply(prepared(small), Preprocess(upscale_min_height=24), LIMITS)
    assert out.width > small.width * 1.5 and out.converted
    capped = apply(prepared(small), Preprocess(upscale_min_height=24), ImageLimits(max_side=1000))
    assert max(capped.width, capped.height) <= 1000
    big = prepared(page(size=40))
    assert apply(big, Preprocess(upscale_min_height=24), LIMITS).width == big.width


# --- the stage --------------------------------------------------------------------------------

def test_the_pipeline_records_which_preprocessing_ran(store, tmp_path):
    from ocrlab.samples.generate import generate_samples
    generate_samples(tmp_path, count=1, seed=3, damage="heavy")
    data = (tmp_path / "timesheet-001.png").read_bytes()
    engine = get_engine("rapidocr")
    version = OCRVersionInfo("2.1.0", "2025-11-02", "preprocessing")
    Pipeline(engine, version, store, preprocess=ALL_ON).process("pre.png", data)
    Pipeline(engine, version, store).process("plain.png", data)
    [pre] = list(store.image_records("pre.png"))
    [plain] = list(store.image_records("plain.png"))
    assert json.loads(pre["Preprocessing"]) == json.loads(ALL_ON.to_json())
    assert "Preprocessing" not in plain
