"""Finding the image (and its ground truth) a record came from, and showing it small.

A record names its image by `ImageKey` and, for S3, `S3Bucket`/`S3Region`. A local image's key takes
one of three forms, and each is looked for where it means something:

- relative to the project folder (the folder holding OCR_VERSION.txt or .ocrlab): how a batch names
  an image under the project;
- an absolute path: an image outside the project;
- relative to the batch's source folder: how older batches named every image. No folder is recorded,
  so the caller names the folders to look in (`sources`; relative ones are the project folder's).

S3 images are read from the bucket the record names. What was not found says where it was looked for.
"""
from __future__ import annotations

import base64
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

from ocrlab.config import in_project, project_dir

THUMBNAIL_SIDE = 900  # pixels on the longer side: enough to read a cell, small enough to page through

Sources = Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class Located:
    """An image's bytes and where they came from, or why they could not be had (`data` None).

    `path` is the local file and `base` the folder its key is relative to (a re-run's source)."""

    data: bytes | None
    where: str
    path: Path | None = None
    base: Path | None = None


def _s3(record: Mapping[str, Any], key: str) -> bytes:
    from ocrlab.runs.sources import s3_client
    reply = s3_client(record.get("S3Region") or None).get_object(Bucket=record["S3Bucket"], Key=key)
    return reply["Body"].read()


def search_folders(sources: Sources = ()) -> list[Path]:
    """The folders a relative key is looked up in: the sources named (the project folder's when relative),
    then the project folder itself."""
    folders = [in_project(s) for s in sources]
    return list(dict.fromkeys(f.resolve() for f in (*folders, project_dir()) if f is not None))


def candidates(image_key: str, sources: Sources = ()) -> list[tuple[Path, Path]]:
    """(path, base) for every place the key may name: itself when absolute, else under each search folder.
    A relative key never leads out of its folder (`..`)."""
    key = str(image_key)
    if Path(key).is_absolute():
        return [(Path(key), Path(key).parent)]
    relative = PurePosixPath(key.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return []
    return [(folder / relative, folder) for folder in search_folders(sources)]


def locate(image_key: str, sources: Sources = ()) -> tuple[Path, Path] | None:
    """The (path, base) of the first candidate that is a file, or None."""
    return next(((path, base) for path, base in candidates(image_key, sources) if path.is_file()), None)


def not_found(image_key: str, sources: Sources = ()) -> str:
    """Where a key was looked for, for the placeholder shown instead of the image."""
    if Path(str(image_key)).is_absolute():
        return f"{image_key} not found (no such file)"
    if not candidates(image_key, sources):
        return f"{image_key} not looked up: a relative key never leads out of its folder"
    project = project_dir().resolve()
    places = [f"{folder} ({'the project folder' if folder == project else 'source'})"
              for folder in search_folders(sources)]
    hint = "" if sources else "; set `source` to the folder the batch read it from"
    return f"{image_key} not found in {', '.join(places)}{hint}"


def default_sources(table: str) -> list[Path]:
    """Where to look when no source is named: the demo's samples for the demo's table (its older records
    name them relative to that folder), else nowhere but the project folder."""
    from ocrlab.config import DEMO_TABLE, settings
    samples = settings().demo_dir / "samples"
    return [samples] if table == DEMO_TABLE and samples.is_dir() else []


def image_sources(table: str, source: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders a notebook looks for a table's images in: `source` if given (relative: the project
    folder's), else `default_sources`."""
    named = in_project(source)
    return [named] if named is not None else default_sources(table)


def image_folders(keys: Iterable[str], sources: Sources = ()) -> tuple[dict[Path, list[str]], list[str]]:
    """The images of `keys` grouped by a folder a batch re-running them reads (`run_batch(folder, keys=...)`),
    and, for each key found nowhere, where it was looked for.

    A key relative to a source folder names its image only within that folder, so it is listed from there.
    A key of the project folder (or an absolute one) names its image from anywhere: those are listed from
    the narrowest folder holding them all, not the whole project."""
    project = project_dir().resolve()
    folders: dict[Path, list[str]] = {}
    anywhere: dict[str, Path] = {}
    missing: list[str] = []
    for key in keys:
        found = locate(key, sources)
        if found is None:
            missing.append(not_found(key, sources))
        elif found[1] == project or Path(str(key)).is_absolute():
            anywhere[key] = found[0].parent
        else:
            folders.setdefault(found[1], []).append(key)
    if anywhere:
        common = Path(os.path.commonpath([str(p) for p in anywhere.values()]))
        folders.setdefault(common, []).extend(anywhere)
    return folders, missing


def truth_folder(keys: Iterable[str], sources: Sources = (), sample: int = 50) -> Path | None:
    """The folder of the `NAME.json` ground truth beside the images of `keys`: the one most of the first
    `sample` images found have theirs in (None: no image found has one)."""
    folders: Counter[Path] = Counter()
    for key in islice(keys, sample):
        found = locate(key, sources)
        if found is not None and found[0].with_suffix(".json").is_file():
            folders[found[0].parent] += 1
    return folders.most_common(1)[0][0] if folders else None


def find_image(record: Mapping[str, Any], sources: Sources = ()) -> Located:
    """The record's image: from its S3 object, else from the first place its key names a file."""
    key = str(record["ImageKey"])
    if record.get("S3Bucket"):
        where = f"s3://{record['S3Bucket']}/{key}"
        try:
            return Located(_s3(record, key), where)
        except Exception as exc:  # any S3 or network failure: the browser shows a placeholder
            return Located(None, f"{where} unreachable: {type(exc).__name__}")
    found = locate(key, sources)
    if found is None:
        return Located(None, not_found(key, sources))
    path, base = found
    try:
        return Located(path.read_bytes(), str(path), path, base)
    except OSError as exc:
        return Located(None, f"{path} could not be read: {exc.strerror or exc}", path, base)


def find_ground_truth(record: Mapping[str, Any], sources: Sources = (),
                      image: Path | None = None) -> dict[str, Any] | None:
    """`NAME.json` beside the image (the parsed form of docs/design.md), if there is one; `image` is the
    local file already found, if any."""
    try:
        if record.get("S3Bucket"):
            text = _s3(record, str(PurePosixPath(str(record["ImageKey"])).with_suffix(".json"))).decode("utf-8-sig")
        else:
            if image is None:
                found = locate(str(record["ImageKey"]), sources)
                image = found[0] if found else None
            if image is None:
                return None
            text = image.with_suffix(".json").read_text(encoding="utf-8-sig")
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
