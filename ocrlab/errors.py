"""One exception base class; each failure mode a subclass carrying what a caller needs."""
from __future__ import annotations


class OcrlabError(Exception):
    """Base of every error ocrlab raises on purpose. The CLI prints its message, no traceback."""


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


class LocalDatabaseError(OcrlabError):
    """The local DynamoDB-compatible server (dynalite) could not be started or stopped."""


class MissingDependency(OcrlabError):
    """An optional dependency is not installed; the message says how to install it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'ocrlab[{extra}]'")
        self.package, self.extra = package, extra


class UnknownName(OcrlabError):
    """A registry lookup failed; the message lists what exists."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(known))}")


# --- failures of one image: each carries the FailureType it is classified as -------------

class ImageFailure(OcrlabError):
    """Processing one image failed. Subclasses fix the failure type; `code` is the ErrorCode."""

    failure_type = "OCR_ERROR"

    def __init__(self, message: str, code: str | None = None, *, raw_output: str | None = None,
                 validation_errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__
        self.raw_output = raw_output
        self.validation_errors = validation_errors or []


class InputError(ImageFailure):
    """Not a decodable image, empty, or beyond a size limit no conversion fixes. No OCR call."""

    failure_type = "INPUT_ERROR"


class OCRError(ImageFailure):
    """The engine failed or refused (model error, timeout, access, content filter)."""

    failure_type = "OCR_ERROR"


class ThrottlingError(ImageFailure):
    """Still rate limited after the retries allowed."""

    failure_type = "THROTTLING_ERROR"


class ParsingError(ImageFailure):
    """The engine answered but no timesheet could be read from its output."""

    failure_type = "PARSING_ERROR"


class ValidationFailure(ImageFailure):
    """A timesheet was read but breaks rules of SPEC section 4."""

    failure_type = "VALIDATION_ERROR"
