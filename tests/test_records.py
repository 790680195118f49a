import datetime as dt
import math
from decimal import Decimal

import pytest

from ocrlab.records import TEXT_LIMITS, clean_text, failure_item, fingerprint, to_decimal, truncate_utf8, utc_timestamp
from ocrlab.version import OCRVersionInfo

V = OCRVersionInfo("2.0.0", "2025-10-25", "test")


@pytest.mark.parametrize("limit", list(range(1, 12)) + list(range(56, 90)))
def test_truncation_never_splits_a_four_byte_character(limit):
    text = "ab😀c𝄞" * 40
    out = truncate_utf8(text, limit)
    data = out.encode("utf-8")  # would raise on a split surrogate pair
    assert len(data) <= limit
    kept = out.removesuffix("…[truncated]")
    assert text.startswith(kept) and len(kept.encode("utf-8")) > limit - 20
    assert out.endswith("…[truncated]") == (limit >= 48)


def test_short_text_is_kept_whole():
    assert truncate_utf8("héllo", 6) == "héllo"


def test_failure_item_applies_every_limit():
    item = failure_item("k", "OCR_ERROR", "é" * 6000, V, {
        "raw_ocr_output": "😀" * 5000, "validation_errors": ["x" * 3000], "stack_trace": "s" * 9000})
    for name, limit in TEXT_LIMITS.items():
        assert name not in item or len(item[name].encode("utf-8")) <= limit, name
    assert {"ErrorMessage", "RawOCROutput", "ValidationErrors", "StackTrace"} <= set(item)


def test_nul_and_lone_surrogates_become_replacement_characters():
    text = "a\x00b\ud800c\udfff"
    assert clean_text(text) == "a\ufffdb\ufffdc\ufffd"
    item = failure_item("img\x00.png", "OCR_ERROR", text, V, {"raw_ocr_output": "\udc80x"})
    for value in item.values():
        if isinstance(value, str):
            value.encode("utf-8")


def test_numbers_are_decimal_never_float_and_nan_is_not_stored():
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(2.0) == Decimal(2)
    assert to_decimal(float("nan")) is None and to_decimal(math.inf) is None
    assert to_decimal(Decimal("NaN")) is None
    item = failure_item("k", "OCR_ERROR", "m", V, {"processing_time": float("nan"), "input_tokens": 12.0,
                                                   "output_tokens": "7", "image_size": 1234})
    assert "ProcessingTimeSeconds" not in item
    assert item["InputTokens"] == Decimal(12) and item["OutputTokens"] == Decimal(7)
    assert not any(isinstance(v, float) for v in item.values())


def test_fingerprint_ignores_numbers_ids_and_paths():
    a = fingerprint("OCR_ERROR", "X", "Image /data/2025/a.png is 4000123 bytes, request 1f2e3d4c-aaaa-bbbb-cccc-0123456789ab")
    b = fingerprint("OCR_ERROR", "X", "Image /other/b.png is 17 bytes, request 00000000-1111-2222-3333-444444444444")
    assert a == b
    assert a != fingerprint("OCR_ERROR", "Y", "Image /data/a.png is 4000123 bytes")
    assert a != fingerprint("PARSING_ERROR", "X", "Image /data/2025/a.png is 4000123 bytes, request x")


def test_fingerprint_ignores_the_image_name():
    a = failure_item("in/week-43.png", "INPUT_ERROR", "week-43.png: file is empty (0 bytes)", V)
    b = failure_item("scan_0007.jpg", "INPUT_ERROR", "scan_0007.jpg: file is empty (0 bytes)", V)
    assert a["FailureFingerprint"] == b["FailureFingerprint"]


def test_timestamps_strictly_increase_in_one_process():
    stamps = [utc_timestamp() for _ in range(2000)]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # Naive UTC, the form the original logger writes and reads (`fromisoformat` vs `utcnow()`).
    assert all(len(s) == 26 and dt.datetime.fromisoformat(s).tzinfo is None for s in stamps)


def test_a_key_with_lone_surrogates_is_stored_cleaned_not_refused():
    # A file name that is not UTF-8 reaches Python with surrogates; callers of the seed's API pass it as is.
    item = failure_item("scans/bad-\udcff.png", "INPUT_ERROR", "m", OCRVersionInfo("1.0", "2025-01-01", "d"))
    assert item["ImageKey"] == "scans/bad-\ufffd.png"
    assert item["ImageKeyOriginal"] == "scans/bad-\\udcff.png"  # what the name really held
    item["ImageKey"].encode("utf-8")  # what boto3 must send
