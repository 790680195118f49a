"""Where images come from: a folder, a single file, or s3://bucket/prefix.

Each source lists every candidate image up front (so a batch can account for all of them) and
reads bytes lazily, one image at a time. What is not an image by name is listed as ignored,
never silently dropped; a file named like an image is always tried (its bytes decide).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .config import settings
from .errors import OcrlabError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp"})


@dataclass(frozen=True)
class SourceItem:
    """One image to process; plain data, so it pickles to worker processes and Dask workers."""

    key: str                       # the ImageKey: path relative to the folder, or the S3 key
    path: str | None = None        # a local file, or None for S3
    s3_bucket: str | None = None
    s3_region: str | None = None

    def read(self) -> bytes:
        if self.path is not None:
            return Path(self.path).read_bytes()
        return s3_client(self.s3_region).get_object(Bucket=self.s3_bucket, Key=self.key)["Body"].read()


@dataclass
class Listing:
    items: list[SourceItem]
    ignored: list[str]
    description: str


def list_folder(root: Path) -> Listing:
    items, ignored = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() in IMAGE_SUFFIXES:
            items.append(SourceItem(rel, str(path)))
        else:
            ignored.append(rel)
    return Listing(items, ignored, f"folder {root}")


@functools.lru_cache(maxsize=8)
def s3_client(region: str | None = None) -> Any:
    """One S3 client per region and process (clients are thread safe, not picklable)."""
    import boto3
    return boto3.client("s3", region_name=region or settings().aws_region)


def list_s3(url: str, client: Any = None) -> Listing:
    parsed = urlparse(url)
    bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
    if not bucket:
        raise OcrlabError(f"{url}: expected s3://bucket/prefix")
    client = client or s3_client()
    region = client.meta.region_name
    items, ignored = [], []
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                if Path(key).suffix.lower() in IMAGE_SUFFIXES:
                    items.append(SourceItem(key, None, bucket, region))
                else:
                    ignored.append(key)
    except (BotoCoreError, ClientError) as exc:
        raise OcrlabError(f"cannot list {url}: {exc}") from exc
    return Listing(items, ignored, f"S3 {url}")


def open_source(source: str, s3: Any = None) -> Listing:
    """List a folder, a file or s3://bucket/prefix; a missing path is a one-line error."""
    if source.startswith("s3://"):
        return list_s3(source, s3)
    path = Path(source)
    if path.is_dir():
        return list_folder(path)
    if path.is_file():
        return Listing([SourceItem(path.name, str(path))], [], f"file {path}")
    raise OcrlabError(f"{source}: no such file or folder")
