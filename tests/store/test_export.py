import csv
import io
from decimal import Decimal

from ocrlab.store.export import COLUMNS, EXTRA_COLUMNS, neutralise, write_csv
from ocrlab.store.failure_log import export_failed_images_csv, log_failed_image
from ocrlab.version import OCRVersionInfo

V1 = OCRVersionInfo("2.0.0", "2025-10-25", "d")


def test_columns_in_spec_order_then_extras():
    assert COLUMNS == ["ImageKey", "FailureTimestamp", "FailureType", "ErrorMessage", "ErrorCode", "OCRVersion",
                       "OCRBuildDate", "OCRFullVersion", "ModelId", "ProcessingTimeSeconds", "InputTokens",
                       "OutputTokens", "ValidationErrors", "S3Bucket", "ImageSize", "AttemptNumber",
                       "CloudWatchLogStream", "RawOCROutput", "StackTrace"]
    out = io.StringIO()
    write_csv([], out)
    assert out.getvalue() == ",".join(COLUMNS + EXTRA_COLUMNS) + "\r\n"


def test_formula_cells_are_neutralised_numbers_are_not():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert neutralise(f"{start}SUM(A1)") == f"'{start}SUM(A1)"
    assert neutralise("plain") == "plain"
    out = io.StringIO()
    write_csv([{"ImageKey": "=HYPERLINK(\"http://x\")", "ErrorMessage": "+1", "ErrorCode": "-cmd",
                "ModelId": "@SUM(1)", "RawOCROutput": "\tx", "StackTrace": "\rboom",
                "ProcessingTimeSeconds": Decimal("-1.5"), "AttemptNumber": Decimal("1E+1")}], out)
    row = list(csv.DictReader(io.StringIO(out.getvalue())))[0]
    assert row["ImageKey"] == "'=HYPERLINK(\"http://x\")" and row["ErrorMessage"] == "'+1"
    assert row["ErrorCode"] == "'-cmd" and row["ModelId"] == "'@SUM(1)"
    assert row["RawOCROutput"] == "'\tx" and row["StackTrace"] == "'\rboom"
    assert row["ProcessingTimeSeconds"] == "-1.5" and row["AttemptNumber"] == "10"


def test_rfc4180_quoting_round_trips_through_dynalite(store, tmp_path):
    message = 'line one\nline "two", with comma\r\nand é 😀'
    for start in "=+-@":
        log_failed_image(store, f"{start}img.png", "OCR_ERROR", f"{start}{message}", V1,
                         {"raw_ocr_output": f"{start}cmd|' /C calc'!A0"})
    path = tmp_path / "out.csv"
    assert export_failed_images_csv(store, path) == 4
    data = path.read_bytes()
    assert data.count(b"\r\n") >= 5  # CRLF record separators (RFC 4180)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    assert sorted(r["ImageKey"] for r in rows) == ["'+img.png", "'-img.png", "'=img.png", "'@img.png"]
    for r in rows:
        assert r["ErrorMessage"] == "'" + r["ImageKey"][1] + message
        assert r["RawOCROutput"].startswith("'") and r["AttemptNumber"] == "1"


def test_export_streams_from_a_generator():
    pulled = []

    def records():
        for i in range(1000):
            pulled.append(i)
            yield {"ImageKey": f"k{i}"}

    class Sink(io.StringIO):
        rows_seen_when_pulled: list[int] = []

        def write(self, s):
            Sink.rows_seen_when_pulled.append(len(pulled))
            return super().write(s)

    sink = Sink()
    assert write_csv(records(), sink) == 1000
    # Rows were written while the generator was still being consumed, not after collecting it.
    assert Sink.rows_seen_when_pulled[1] == 1
