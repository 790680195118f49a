"""Finding the image (and its ground truth) a record came from, and showing it small.

A record names its image by `ImageKey` and, for S3, `S3Bucket`/`S3Region`. A local batch stores the
path relative to its source folder, and no folder is recorded: a path from one machine means
nothing on another, and a folder may move. The caller names the folders to look in (`sources`);
S3 images are read from the bucket the record names.
"""
from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence

THUMBNAIL_SIDE = 900  # pixels on the longer side: enough to read a cell, small enough to page through


@dataclass(frozen=True)
class Located:
    """An image's bytes and where they came from, or why they could not be had (`data` None)."""

    data: bytes | None
    where: str


def _s3(record: Mapping[str, Any], key: str) -> bytes:
    from .sources import s3_client
    reply = s3_client(record.get("S3Region") or None).get_object(Bucket=record["S3Bucket"], Key=key)
    return reply["Body"].read()


def _local(record: Mapping[str, Any], sources: Sequence[str | os.PathLike[str]], suffix: str | None) -> Path | None:
    relative = PurePosixPath(str(record["ImageKey"]).replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:  # a key never leads outside its folder
        return None
    for folder in sources:
        path = Path(folder) / relative
        if suffix is not None:
            path = path.with_suffix(suffix)
        if path.is_file():
            return path
    return None


def find_image(record: Mapping[str, Any], sources: Sequence[str | os.PathLike[str]] = ()) -> Located:
    """The record's image: from its S3 object, else from the first source folder that holds its key."""
    key = str(record["ImageKey"])
    if record.get("S3Bucket"):
        where = f"s3://{record['S3Bucket']}/{key}"
        try:
            return Located(_s3(record, key), where)
        except Exception as exc:  # any S3 or network failure: the browser shows a placeholder
            return Located(None, f"{where} unreachable: {type(exc).__name__}")
    path = _local(record, sources, None)
    if path is None:
        searched = ", ".join(map(str, sources)) or "no source folder given"
        return Located(None, f"{key} not found ({searched})")
    return Located(path.read_bytes(), str(path))


def find_ground_truth(record: Mapping[str, Any], sources: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any] | None:
    """`NAME.json` beside the image (the parsed form of docs/design.md), if there is one."""
    try:
        if record.get("S3Bucket"):
            text = _s3(record, str(PurePosixPath(str(record["ImageKey"])).with_suffix(".json"))).decode("utf-8-sig")
        else:
            path = _local(record, sources, ".json")
            if path is None:
                return None
            text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text)
    except Exception:  # missing, unreachable or unreadable: no ground truth to show
        return None
    return data if isinstance(data, dict) else None


def thumbnail_data_uri(data: bytes, side: int = THUMBNAIL_SIDE) -> str | None:
    """The image downscaled to `side` pixels as a JPEG data: URI; None when the bytes are not an image."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=85)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
