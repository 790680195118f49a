"""Failure taxonomy (docs/design.md): classify from exception types and AWS error codes, never from message words."""
from __future__ import annotations

import json

from PIL import UnidentifiedImageError
from PIL.Image import DecompressionBombError

from ocrlab.errors import FailureType, ImageFailure

THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "SlowDown",
    "ServiceQuotaExceededException", "RequestThrottled", "RequestThrottledException",
})
# A request the service rejected because of the image itself: nothing a retry or another model fixes.
INPUT_CODES = frozenset({"InvalidImageFormat", "ImageTooLargeException", "NoSuchKey", "NoSuchBucket"})
# A file that cannot be read is an input problem, not the engine's.
INPUT_EXCEPTIONS = (FileNotFoundError, IsADirectoryError, PermissionError, UnidentifiedImageError,
                    DecompressionBombError)


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def classify(exc: BaseException) -> tuple[FailureType, str]:
    """(FailureType, ErrorCode) for an exception. ErrorCode is the AWS code or the class name."""
    if isinstance(exc, ImageFailure):
        return exc.failure_type, exc.code
    code = aws_error_code(exc)
    if code is not None:
        if code in THROTTLING_CODES:
            return FailureType.THROTTLING_ERROR, code
        if code in INPUT_CODES:
            return FailureType.INPUT_ERROR, code
        return FailureType.OCR_ERROR, code
    name = type(exc).__name__
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return FailureType.PARSING_ERROR, name
    if isinstance(exc, INPUT_EXCEPTIONS):
        return FailureType.INPUT_ERROR, name
    return FailureType.OCR_ERROR, name
