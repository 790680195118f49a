"""Writing files so that readers never see half of one, and naming them so that none is overwritten."""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TextIO


def json_safe(value: Any) -> Any:
    """Plain JSON values: Decimal -> int or float, numpy/pandas scalars -> Python, NaN/inf -> None,
    tuples and sets -> lists, anything else unknown -> its str."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    elif hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """A text file to write `path` through: a temporary file renamed into place once complete, so a
    reader never sees half of it. A device or a pipe (/dev/null, /dev/stdout) is written directly:
    renamed over, it would be replaced by a file."""
    out = Path(path)
    if out.exists() and not out.is_file() and not out.is_dir():
        with open(out, "w", encoding="utf-8") as handle:
            yield handle
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(data: Any, path: str | os.PathLike[str], *, indent: int | None = 2) -> Path:
    """Strict JSON (no NaN), written through `replacing`."""
    with replacing(path) as handle:
        handle.write(json.dumps(json_safe(data), indent=indent, ensure_ascii=False, allow_nan=False))
    return Path(path)


def write_chunks(chunks: Iterable[str], path: str | os.PathLike[str]) -> Path:
    """Text written piece by piece (memory does not grow with the file), through `replacing`."""
    with replacing(path) as handle:
        handle.writelines(chunks)
    return Path(path)


def unique_path(folder: str | os.PathLike[str], stem: str, suffix: str, sep: str = "-") -> Path:
    """`folder/STEM.SUFFIX`, or `STEM-2.SUFFIX`, `STEM-3.SUFFIX`... : never a file that exists."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    path, n = root / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = root / f"{stem}{sep}{n}{suffix}"
    return path


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail before any work when `path` cannot be written: a folder, or a parent that cannot be made."""
    from .errors import OcrlabError
    out = Path(path)
    if out.is_dir():
        raise OcrlabError(f"{out} is a folder; give a file name")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OcrlabError(f"cannot create the folder of {out}: {exc.strerror or exc}") from None
    # Try it rather than ask os.access: root passes that check on a read-only mount or /proc.
    try:
        if out.exists():
            open(out, "a").close()
        else:
            tempfile.TemporaryFile(dir=parent).close()
    except OSError as exc:
        raise OcrlabError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out
