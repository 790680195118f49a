"""Writing files so that readers never see half of one (and a failed write keeps the old one), and
naming them so that none is overwritten."""
from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping


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
def replacing(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write `path` through: a temporary file beside it (a name nobody can have planted: it
    is created exclusively) renamed into place once complete. A reader never sees half of it, and a
    write that fails (a full disk, a file-size limit) leaves the previous file as it was and raises an
    OSError naming `path`. A link at `path` is replaced, never followed, so no link planted in an
    output folder sends a file out of it; a device or a pipe (/dev/null, /dev/stdout, even through a
    link) is written directly, since renamed over it would be replaced by a file."""
    out = Path(path)
    mode = "wb" if binary else "w"
    text: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    if out.exists() and not out.is_file() and not out.is_dir():
        with open(out, mode, **text) as stream:
            yield stream
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, _mode_for(out))
        with os.fdopen(fd, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        if exc.filename is None:  # a write into the file: name it, as an error opening it would
            raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(out: Path) -> int:
    """The permissions the written file gets: those of the file it replaces, else what open() would give."""
    try:
        if out.is_file() and not out.is_symlink():
            return out.stat().st_mode & 0o7777
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # read, not set: setting it to read it would race with other threads creating files
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Text written through `replacing`."""
    with replacing(path) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Bytes written through `replacing`."""
    with replacing(path, binary=True) as handle:
        handle.write(data)
    return Path(path)


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
    from ocrlab.errors import OcrlabError
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
