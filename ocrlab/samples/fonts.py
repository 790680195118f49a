"""The typefaces synthetic timesheets are printed in, and where each comes from.

DejaVu comes with matplotlib (the `local` extra), so it is always there. The others are
Debian font packages (`.ci/run` and the README install them): Liberation (metric twins of
Arial, Times and Courier), GNU FreeFont, and URW's narrow sans and Century Schoolbook, whose
tight letters are what make an engine run cells together. A sample picks its face from the
whole catalogue by seed; a face that is not installed is replaced by the DejaVu face of the
same kind, and `missing()` says which and what to install, so a sample set made on a machine
without the packages is different (same truth, other pixels) and says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ocrlab.errors import MissingDependency

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True)
class Face:
    name: str
    kind: str          # "sans", "serif" or "mono": what replaces it when it is missing
    regular: str       # file names; DejaVu's live in matplotlib, the others in SYSTEM_FONT_DIRS
    bold: str
    package: str = ""  # the Debian package that ships it; "" for matplotlib's DejaVu


DEJAVU = {
    "sans": Face("DejaVu Sans", "sans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "serif": Face("DejaVu Serif", "serif", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "mono": Face("DejaVu Sans Mono", "mono", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"),
}
CATALOGUE: tuple[Face, ...] = (
    *DEJAVU.values(),
    Face("Liberation Sans", "sans", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "fonts-liberation2"),
    Face("Liberation Serif", "serif", "LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "fonts-liberation2"),
    Face("Liberation Mono", "mono", "LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf", "fonts-liberation2"),
    Face("FreeSans", "sans", "FreeSans.ttf", "FreeSansBold.ttf", "fonts-freefont-ttf"),
    Face("FreeSerif", "serif", "FreeSerif.ttf", "FreeSerifBold.ttf", "fonts-freefont-ttf"),
    Face("FreeMono", "mono", "FreeMono.ttf", "FreeMonoBold.ttf", "fonts-freefont-ttf"),
    Face("Nimbus Sans Narrow", "sans", "NimbusSansNarrow-Regular.otf", "NimbusSansNarrow-Bold.otf", "fonts-urw-base35"),
    Face("C059", "serif", "C059-Roman.otf", "C059-Bold.otf", "fonts-urw-base35"),
)
DEBIAN_PACKAGES = tuple(dict.fromkeys(f.package for f in CATALOGUE if f.package))


@lru_cache(maxsize=None)
def _path(file_name: str, bundled: bool) -> Path | None:
    if bundled:
        try:
            import matplotlib
        except ImportError:
            raise MissingDependency("matplotlib", "local") from None
        return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file_name
    return next((p for d in SYSTEM_FONT_DIRS if d.is_dir() for p in d.rglob(file_name)), None)


def resolve(face: Face) -> Face:
    """The face itself when its files are installed, else the DejaVu face of its kind."""
    if not face.package or (_path(face.regular, False) and _path(face.bold, False)):
        return face
    return DEJAVU[face.kind]


def missing() -> list[str]:
    """One note per catalogue face that is not installed: what stands in and what to install."""
    return [f"{f.name} is not installed (apt-get install {f.package}); {DEJAVU[f.kind].name} is used instead"
            for f in CATALOGUE if resolve(f) is not f]


@lru_cache(maxsize=64)
def load(face: Face, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    face = resolve(face)
    path = _path(face.bold if bold else face.regular, not face.package)
    assert path is not None  # resolve() only keeps faces whose files exist
    return ImageFont.truetype(str(path), size)
