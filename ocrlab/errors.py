"""Every exception ocrlab raises on purpose, and the failure types they are classified as.

One base class; each failure mode a subclass carrying what a caller needs. The CLI prints the
message of any OcrlabError as one line, without a traceback.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path


class FailureType(str, Enum):
    """The failure taxonomy (docs/design.md, "Failure taxonomy")."""

    INPUT_ERROR = "INPUT_ERROR"
    OCR_ERROR = "OCR_ERROR"
    THROTTLING_ERROR = "THROTTLING_ERROR"
    PARSING_ERROR = "PARSING_ERROR"
    VALIDATION_ERROR = "VALIDATION_ERROR"

    def __str__(self) -> str:
        return self.value


class OcrlabError(Exception):
    """Base of every error ocrlab raises on purpose."""


class VersionFileError(OcrlabError):
    """OCR_VERSION.txt is missing or malformed."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


class StoreUnavailable(OcrlabError):
    """The DynamoDB store could not be reached or refused the request after retries."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TableMissing(StoreUnavailable):
    """The table does not exist: a read names it (a write creates it)."""

    def __init__(self, table: str, where: str) -> None:
        super().__init__(f"table {table!r} does not exist ({where}); check --table or OCRLAB_TABLE "
                         "(a batch creates its table as it writes the first record)", "ResourceNotFoundException")
        self.table = table


class RecordRejected(OcrlabError):
    """DynamoDB refused a record for its content (too large, a key too long): retrying cannot help."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class SpoolUnavailable(OcrlabError):
    """A record the store could not take could not be spooled either (full disk, no permission)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"cannot write the spool {path}: {cause.__class__.__name__}: {cause}")
        self.path = path
        self.record: dict[str, object] | None = None  # the record that could not be kept, if any


class NothingSelected(OcrlabError):
    """A notebook's parameters selected nothing to show or run; the message says which one to change."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the sentence is the whole story.
        return [f"Nothing to do: {self}"]


class LocalDatabaseError(OcrlabError):
    """The local DynamoDB-compatible server (dynalite) could not be started or stopped."""


class MissingDependency(OcrlabError):
    """An optional dependency is not installed; the message says how to install it."""

    def __init__(self, package: str, extra: str, how: str | None = None) -> None:
        super().__init__(f"{package} is not installed: {how or f'pip install ocrlab[{extra}]'}")
        self.package, self.extra = package, extra


class UnknownName(OcrlabError):
    """A registry lookup failed; the message lists what exists."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(known))}")


class PreprocessError(OcrlabError):
    """Image preprocessing settings that are not settings (unknown key, wrong type)."""


# --- reports ------------------------------------------------------------------------------

class ReportError(OcrlabError):
    """A report could not be produced."""


class ParameterError(ReportError):
    """A parameter is unknown to the notebook or its value does not fit the default's type."""


class NotebookFailed(ReportError):
    """A cell raised. The partial executed notebook and its HTML are written all the same."""

    def __init__(self, notebook: str, cell: int, execution_count: int | None, code_line: str,
                 exception: str, ipynb_path: Path, html_path: Path | None) -> None:
        where = f"cell {cell}" + (f" (In [{execution_count}])" if execution_count else "")
        at = f", at `{code_line}`" if code_line else ""
        kept = html_path or ipynb_path
        super().__init__(f"notebook {notebook} failed in {where}{at}: {exception}; partial report: {kept}")
        self.notebook, self.cell, self.execution_count = notebook, cell, execution_count
        self.code_line, self.exception = code_line, exception
        self.ipynb_path, self.html_path = ipynb_path, html_path


# --- failures of one image: each carries the FailureType it is classified as -------------

class ImageFailure(OcrlabError):
    """Processing one image failed. Subclasses fix the failure type; `code` is the ErrorCode.

    The engine fills in what it knew when it failed (model id, tokens, time, raw output), so the
    failure record carries them.
    """

    failure_type = FailureType.OCR_ERROR

    def __init__(self, message: str, code: str | None = None, *, raw_output: str | None = None,
                 validation_errors: list[str] | None = None, model_id: str | None = None,
                 input_tokens: int | None = None, output_tokens: int | None = None,
                 processing_time: float | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__
        self.raw_output = raw_output
        self.validation_errors = validation_errors or []
        self.model_id = model_id
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.processing_time = processing_time


class InputError(ImageFailure):
    """Not a decodable image, empty, or beyond a size limit no conversion fixes. No OCR call."""

    failure_type = FailureType.INPUT_ERROR


class OCRError(ImageFailure):
    """The engine failed or refused (model error, timeout, access, content filter)."""

    failure_type = FailureType.OCR_ERROR


class ThrottlingError(ImageFailure):
    """Still rate limited after the retries allowed."""

    failure_type = FailureType.THROTTLING_ERROR


class ParsingError(ImageFailure):
    """The engine answered but no timesheet could be read from its output."""

    failure_type = FailureType.PARSING_ERROR


class ValidationFailure(ImageFailure):
    """A timesheet was read but breaks a rule of the reference timesheet."""

    failure_type = FailureType.VALIDATION_ERROR


class TesseractMissing(MissingDependency):
    """The tesseract binary is not on PATH."""

    def __init__(self) -> None:
        super().__init__("tesseract", "system", "apt-get install tesseract-ocr (or brew install tesseract), "
                                                "or choose --engine rapidocr")
