"""How ocrlab configures the boto3 clients it makes (DynamoDB, Bedrock, S3): one botocore Config.

Two settings save CPU on every request, which a batch at high concurrency is bound by (the calls
are made from one Python process):
- no client-side parameter validation: ocrlab builds every request itself, and the server
  validates all the same;
- a User-Agent fixed once per client. botocore otherwise rebuilds its standard one twice a
  request from some thirty components sanitised a character at a time, a seventh of a request's
  CPU. The fixed one names ocrlab, botocore, Python and the platform, so AWS-side logs still tell
  who called.
"""
from __future__ import annotations

import functools
import platform
from importlib import metadata
from typing import Any

import botocore
from botocore.config import Config


@functools.cache
def user_agent() -> str:
    try:
        version = metadata.version("ocrlab")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        version = "0"
    return (f"ocrlab/{version} Botocore/{botocore.__version__} Python/{platform.python_version()} "
            f"{platform.system()}/{platform.release()}")


def client_config(**options: Any) -> Config:
    """A botocore Config with ocrlab's two CPU savings and the caller's own options (retries, timeouts, pool)."""
    return Config(parameter_validation=False, user_agent=user_agent(), **options)
