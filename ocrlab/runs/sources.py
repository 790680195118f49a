"""Where images come from: a folder, a single file, or s3://bucket/prefix.

Each source lists every candidate image up front (so a batch can account for all of them) and
reads bytes lazily, one image at a time. What is not an image by name is listed as ignored with
the reason, never silently dropped; an entry named like an image is always tried (its bytes
decide), and one that cannot be read (a broken link, a FIFO, a folder) becomes an INPUT_ERROR.
Links that lead out of the source folder are not followed unless asked (`follow_links`).

An item is known by its key and its content (docs/design.md, "Identity and order"): a local file's
key is its path relative to the project folder (else absolute), an S3 object's its object key; its
digest is the SHA-256 of its bytes, or the object's ETag.
"""
from __future__ import annotations

import functools
import hashlib
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Collection
from urllib.parse import urlparse

from ocrlab.config import project_dir, settings
from ocrlab.errors import InputError, OcrlabError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp"})


@dataclass(frozen=True)
class SourceItem:
    """One image to process; plain data, so it pickles to worker processes and Dask workers."""

    key: str                       # the ImageKey: the path relative to the project folder (else absolute), or the S3 key
    path: str | None = None        # a local file, or None for S3
    s3_bucket: str | None = None
    s3_region: str | None = None
    digest: str | None = None      # its content when listed: sha256:HEX (files, see `identified`), etag:ETAG (S3)

    def read(self) -> bytes:
        return self.fetch()[0]

    def fetch(self) -> tuple[bytes, str | None]:
        """The image's bytes and the digest of exactly those bytes (the file may have changed since listing)."""
        if self.path is None:
            answer = s3_client(self.s3_region).get_object(Bucket=self.s3_bucket, Key=self.key)
            return answer["Body"].read(), etag_digest(answer.get("ETag"))
        self._check_file()
        data = Path(self.path).read_bytes()
        return data, sha256_digest(data)

    def identified(self) -> SourceItem:
        """This item with its digest: a regular file's SHA-256 (read once, in chunks); a link to nowhere,
        a FIFO or a folder stays without one (it is never opened: its run records why)."""
        if self.digest is not None or self.path is None:
            return self
        try:
            self._check_file()
            hasher = hashlib.sha256()
            with open(self.path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    hasher.update(chunk)
        except (OSError, InputError):
            return self
        return replace(self, digest=f"sha256:{hasher.hexdigest()}")

    def _check_file(self) -> None:
        assert self.path is not None
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            if os.path.islink(self.path):
                raise InputError(f"{self.key}: a link to {os.readlink(self.path)!r}, which does not exist",
                                 code="BrokenLink") from None
            raise
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end: never opened
            raise InputError(f"{self.key}: not a regular file ({_kind(mode)})", code="NotAFile")


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def etag_digest(etag: str | None) -> str | None:
    """An S3 object's content as its ETag says (quotes dropped); None when the store gave none."""
    return f"etag:{etag.strip(chr(34))}" if etag else None


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
    root: Path | None = None        # the folder listed (None: S3, or a single file)

    def named(self, keys: Collection[str]) -> list[SourceItem]:
        """The items `keys` name: by key, or by the name within the listed folder that an older ocrlab
        used as the key (then the item keeps that key, so its records join the image's earlier ones)."""
        wanted = set(keys)
        chosen = []
        for item in self.items:
            if item.key in wanted:
                chosen.append(item)
            elif self.root is not None and item.path is not None:
                old = image_key(Path(item.path).relative_to(self.root).as_posix())
                if old in wanted:
                    chosen.append(replace(item, key=old))
        return chosen


def image_key(name: str) -> str:
    """The key for a file name, one to one. A name that is not UTF-8 (any bytes are allowed on Linux)
    reaches Python with surrogates, which no record, CSV or terminal can carry: its bad bytes are
    written as \\xNN, and its backslashes doubled so that a name spelling \\xff literally stays another
    key; the file is still read by its real name. Any other name is its own key."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
        if "\\" not in text:
            return text
    except UnicodeDecodeError:
        pass
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


class LocalKeys:
    """What a local image is called in the store: its path relative to the project folder (the one
    holding OCR_VERSION.txt or .ocrlab), or its absolute path when it lies elsewhere. So `week43/scan_0001.png`
    and `week44/scan_0001.png` are two images wherever the batch is started, and a folder moved inside the
    project (or out of it) is recognised by the content of its files (ocrlab.runs.batch)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(os.path.abspath(root or project_dir()))

    def key(self, path: Path) -> str:
        absolute = Path(os.path.abspath(path))
        try:
            return image_key(absolute.relative_to(self.root).as_posix())
        except ValueError:
            return image_key(absolute.as_posix())


def _shown(path: Path, root: Path) -> str:
    """A file that is not run, as the summary names it: within the folder it was found in."""
    return image_key(path.relative_to(root).as_posix())


def _outside(path: Path, root: Path) -> bool:
    """A link whose target is not under the (resolved) source folder."""
    return path.is_symlink() and not path.resolve().is_relative_to(root)


def list_folder(root: Path, follow_links: bool = False) -> Listing:
    """Every entry of the folder tree: image names to run, everything else ignored with a reason."""
    items: list[SourceItem] = []
    ignored: list[tuple[str, str]] = []
    real_root = root.resolve()
    keys = LocalKeys()
    for folder, dirs, files in os.walk(root, followlinks=follow_links):
        dirs.sort()
        here = Path(folder)
        for name in list(dirs):
            if not follow_links and (here / name).is_symlink():
                ignored.append((_shown(here / name, root), "a link to a folder (--follow-links)"))
        for name in sorted(files):
            path = here / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                ignored.append((_shown(path, root), "not an image name"))
            elif not follow_links and _outside(path, real_root) and path.exists():
                ignored.append((_shown(path, root), "a link out of the source folder (--follow-links)"))
            else:
                items.append(SourceItem(keys.key(path), str(path)))
    return Listing(items, ignored, f"folder {root}", root)


@functools.lru_cache(maxsize=8)
def s3_client(region: str | None = None) -> Any:
    """One S3 client per region and process (clients are thread safe, not picklable)."""
    import boto3

    from ocrlab.clients import client_config
    return boto3.client("s3", region_name=region or settings().aws_region, config=client_config())


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
                    items.append(SourceItem(key, None, bucket, region, etag_digest(obj.get("ETag"))))
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
        return Listing([SourceItem(LocalKeys().key(path), str(path))], [], f"file {path}")
    raise OcrlabError(f"{source}: no such file or folder")
