"""Where images come from: a folder, a single file, or s3://bucket/prefix.

Each source lists every candidate image up front (so a batch can account for all of them) and
reads bytes lazily, one image at a time. What is not an image by name is listed as ignored with
the reason, never silently dropped; an entry named like an image is always tried (its bytes
decide), and one that cannot be read (a broken link, a FIFO, a folder) becomes an INPUT_ERROR.
Links that lead out of the source folder are not followed unless asked (`follow_links`).
"""
from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .config import settings
from .errors import InputError, OcrlabError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp"})


@dataclass(frozen=True)
class SourceItem:
    """One image to process; plain data, so it pickles to worker processes and Dask workers."""

    key: str                       # the ImageKey: path relative to the folder, or the S3 key
    path: str | None = None        # a local file, or None for S3
    s3_bucket: str | None = None
    s3_region: str | None = None

    def read(self) -> bytes:
        if self.path is None:
            return s3_client(self.s3_region).get_object(Bucket=self.s3_bucket, Key=self.key)["Body"].read()
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            if os.path.islink(self.path):
                raise InputError(f"{self.key}: a link to {os.readlink(self.path)!r}, which does not exist",
                                 code="BrokenLink") from None
            raise
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end: never opened
            raise InputError(f"{self.key}: not a regular file ({_kind(mode)})", code="NotAFile")
        return Path(self.path).read_bytes()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a file"


@dataclass
class Listing:
    items: list[SourceItem]
    ignored: list[tuple[str, str]]  # (name, why it is not run)
    description: str


def image_key(relative: str) -> str:
    """The key for a file name. A name that is not UTF-8 (any bytes are allowed on Linux) reaches
    Python with surrogates, which no record, CSV or terminal can carry: its bad bytes are written
    as \\xNN instead, while the file is still read by its real name."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def _outside(path: Path, root: Path) -> bool:
    """A link whose target is not under the (resolved) source folder."""
    return path.is_symlink() and not path.resolve().is_relative_to(root)


def list_folder(root: Path, follow_links: bool = False) -> Listing:
    """Every entry of the folder tree: image names to run, everything else ignored with a reason."""
    items: list[SourceItem] = []
    ignored: list[tuple[str, str]] = []
    real_root = root.resolve()
    for folder, dirs, files in os.walk(root, followlinks=follow_links):
        dirs.sort()
        here = Path(folder)
        for name in list(dirs):
            if not follow_links and (here / name).is_symlink():
                ignored.append((image_key((here / name).relative_to(root).as_posix()), "a link to a folder (--follow-links)"))
        for name in sorted(files):
            path = here / name
            rel = image_key(path.relative_to(root).as_posix())
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                ignored.append((rel, "not an image name"))
            elif not follow_links and _outside(path, real_root) and path.exists():
                ignored.append((rel, "a link out of the source folder (--follow-links)"))
            else:
                items.append(SourceItem(rel, str(path)))
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
                    ignored.append((key, "not an image name"))
    except (BotoCoreError, ClientError) as exc:
        raise OcrlabError(f"cannot list {url}: {exc}") from exc
    return Listing(items, ignored, f"S3 {url}")


def open_source(source: str, s3: Any = None, follow_links: bool = False) -> Listing:
    """List a folder, a file or s3://bucket/prefix; a missing path is a one-line error."""
    if source.startswith("s3://"):
        return list_s3(source, s3)
    path = Path(source)
    if path.is_dir():
        return list_folder(path, follow_links)
    if path.is_file():
        return Listing([SourceItem(image_key(path.name), str(path))], [], f"file {path}")
    raise OcrlabError(f"{source}: no such file or folder")
