"""Where ocrlab keeps its files and which DynamoDB it talks to (SPEC 2).

The store is real DynamoDB when AWS is configured (OCRLAB_STORE=aws, an explicit
AWS_ENDPOINT_URL_DYNAMODB, or AWS credentials in the environment), else the local dynalite.
`describe_store` says which, so commands can print it instead of guessing silently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TABLE = "ocrlab"
DEFAULT_PORT = 8000
LOCAL_REGION = "us-east-1"


def project_dir() -> Path:
    """The nearest folder at or above the working directory holding OCR_VERSION.txt or .ocrlab.

    Notebook kernels start in notebooks/; this keeps them on the project's data, not a second copy.
    """
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if (folder / "OCR_VERSION.txt").is_file() or (folder / ".ocrlab").is_dir():
            return folder
    return cwd


def home() -> Path:
    """The working folder for local data: OCRLAB_HOME, else .ocrlab in the project folder."""
    env = os.environ.get("OCRLAB_HOME")
    return Path(env).resolve() if env else project_dir() / ".ocrlab"


def spool_dir() -> Path:
    return home() / "spool"


def local_port() -> int:
    return int(os.environ.get("OCRLAB_DB_PORT", DEFAULT_PORT))


@dataclass(frozen=True)
class StoreTarget:
    """Where records go. `local` means the embedded dynalite that ocrlab starts on demand."""

    kind: str                    # "local" or "aws"
    endpoint_url: str | None
    region: str

    def describe(self, table: str) -> str:
        if self.kind == "local":
            return f"store: local dynalite {self.endpoint_url}, table {table!r}, data in {home() / 'dynamodb'}"
        where = self.endpoint_url or f"DynamoDB {self.region}"
        return f"store: {where}, table {table!r}"


def store_target() -> StoreTarget:
    choice = os.environ.get("OCRLAB_STORE", "auto").lower()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    aws_configured = bool(endpoint or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ACCESS_KEY_ID"))
    if choice == "aws" or (choice == "auto" and aws_configured):
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or LOCAL_REGION
        return StoreTarget("aws", endpoint, region)
    return StoreTarget("local", f"http://127.0.0.1:{local_port()}", LOCAL_REGION)
