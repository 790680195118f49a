"""Version stamps read from OCR_VERSION.txt (docs/design.md, "Version stamps")."""
from __future__ import annotations

import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ocrlab.config import STAMP_VARIABLES, find_upward, settings
from ocrlab.errors import VersionFileError

REQUIRED = ("version", "build_date", "description")
_LINE = re.compile(r"^([a-z_]+)\s*:\s*(.*?)\s*$")
_SEMVER = re.compile(r"^\d+(\.\d+){0,2}([-+.][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class OCRVersionInfo:
    """The stamp every record carries."""

    version: str
    build_date: str
    description: str

    @property
    def full_version(self) -> str:
        """`<version>-<build_date>`; the version alone when the build date is unknown."""
        return f"{self.version}-{self.build_date}" if self.build_date else self.version

    def stamp(self) -> dict[str, str]:
        """The four attributes written on every record."""
        return {"OCRVersion": self.version, "OCRBuildDate": self.build_date,
                "OCRDescription": self.description, "OCRFullVersion": self.full_version}


VERSION_FILE = "OCR_VERSION.txt"


def default_version_file() -> Path:
    """OCRLAB_VERSION_FILE, else OCR_VERSION.txt of the project folder (ocrlab.config.project_dir)."""
    config = settings()
    if config.version_file is not None:
        return config.version_file
    found = find_upward(VERSION_FILE)
    if found is None:
        raise VersionFileError(str(Path.cwd() / VERSION_FILE), None,
                               "not found here or in any folder above (and OCRLAB_VERSION_FILE is not set); "
                               "create one with `ocrlab init`, or pass --ocr-version-file")
    return found / VERSION_FILE


def version_from(given: OCRVersionInfo | str | os.PathLike[str] | None) -> OCRVersionInfo:
    """A stamp from what callers pass: a stamp, a version file, None (the project's file), or a
    version string ("2.0.0"), completed from the project's file when its version matches."""
    if isinstance(given, OCRVersionInfo):
        return given
    if given is None or Path(given).is_file() or not _SEMVER.match(str(given)):
        return load_version(given)
    try:
        project = load_version()
    except VersionFileError:
        project = None
    return project if project and project.version == str(given) else OCRVersionInfo(str(given), "", "")


def load_version(path: str | os.PathLike[str] | None = None) -> OCRVersionInfo:
    """Parse a version file; any defect is a VersionFileError naming the file and line.

    Without a path, a stamp given by the environment (OCRLAB_OCR_VERSION, OCRLAB_OCR_BUILD_DATE,
    OCRLAB_OCR_DESCRIPTION: how the Lambda function gets its own) wins over the default file.
    Parsed once per file and modification time: failures are logged on hot paths.
    """
    if path is None and (stamp := settings().version_stamp) is not None:
        return _from_environment(stamp)
    p = Path(path) if path is not None else default_version_file()
    try:
        modified = p.stat().st_mtime_ns
    except FileNotFoundError:
        raise VersionFileError(str(p), None, "file not found") from None
    return _parse(p, modified)


@functools.lru_cache(maxsize=64)
def _parse(p: Path, modified: int) -> OCRVersionInfo:
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VersionFileError(str(p), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VersionFileError(str(p), None, f"cannot read: {exc}") from None
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise VersionFileError(str(p), number, f"expected 'key: value', got {line.strip()!r}")
        key, value = m.groups()
        if key not in REQUIRED:
            raise VersionFileError(str(p), number, f"unknown key {key!r} (expected {', '.join(REQUIRED)})")
        if key in fields:
            raise VersionFileError(str(p), number, f"{key!r} given twice")
        if problem := _problem(key, value):
            raise VersionFileError(str(p), number, problem)
        fields[key] = value
    missing = [k for k in REQUIRED if k not in fields]
    if missing:
        raise VersionFileError(str(p), None, f"missing {', '.join(missing)}")
    return OCRVersionInfo(**fields)


def _problem(key: str, value: str) -> str | None:
    """What is wrong with one field's value, if anything."""
    if not value:
        return f"{key!r} has no value"
    if key == "version" and not _SEMVER.match(value):
        return f"version {value!r} is not like 2.0.0"
    if key == "build_date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return f"build_date {value!r} is not YYYY-MM-DD"
    return None


def full_versions(asked: str, known: Sequence[str]) -> list[str]:
    """The full versions a version filter selects among those a table holds: itself, when the table
    holds it; else every `ASKED-YYYY-MM-DD` (`2.0.0` selects 2.0.0-2025-10-25 and 2.0.0-2025-11-02: the
    records whose OCRVersion is 2.0.0, as the original logger's filter matched them)."""
    if asked in known:
        return [asked]
    short = re.compile(re.escape(asked) + r"-\d{4}-\d{2}-\d{2}")
    return [version for version in known if short.fullmatch(version)]


def _from_environment(stamp: dict[str, str]) -> OCRVersionInfo:
    for key, value in stamp.items():
        if problem := _problem(key, value):
            raise VersionFileError(f"environment ({STAMP_VARIABLES[key]})", None, problem)
    return OCRVersionInfo(**stamp)


_CONSTANTS = {"OCR_VERSION": "version", "OCRVersion": "version", "OCRBuildDate": "build_date",
              "OCRDescription": "description", "OCRFullVersion": "full_version"}


def __getattr__(name: str) -> str:
    """The original version module's constants (`OCR_VERSION` is the version string), read when asked
    for, so that importing ocrlab never needs a version file; any other name is an AttributeError."""
    if name not in _CONSTANTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return str(getattr(load_version(), _CONSTANTS[name]))
