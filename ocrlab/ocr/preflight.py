"""Image preflight: runs before any engine call, so a bad file costs no OCR call.

Checks that the bytes are a fully decodable image (format from magic bytes, never from the
name), then makes it fit the engine's `ImageLimits`: accepted format, longest side, file
size. An image that already fits is passed through byte-identical. Anything unfixable
raises `InputError` (FailureType INPUT_ERROR) with a code and a message naming the file.
"""
from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrlab.errors import InputError
from ocrlab.ocr.engines.base import ImageLimits, PreparedImage

# Magic numbers of the formats engines take or we convert most often. Anything else is left
# to PIL's own identification (see detect_format).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"BM", "bmp"),
)
# PIL format names that differ from what we report ("MPO" is a multi-picture JPEG).
_PIL_NAMES = {"MPO": "jpeg", "JPEG2000": "jpeg2000"}
# Formats we can write when converting, in order of preference: lossless PNG first.
_OUTPUT_ORDER = ("png", "jpeg", "webp", "gif")
_JPEG_QUALITIES = (90, 80, 70, 60, 50)
_DOWNSCALE_STEP = 0.75
# Below this longest side the text of a timesheet is no longer legible: stop shrinking.
MIN_SIDE = 256
# PIL itself refuses images above twice this; we refuse above it, before decoding a pixel.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


def detect_format(data: bytes) -> str | None:
    """Lower-case image format of `data` from its content (None if no image format matches).

    Common formats are recognised from their magic numbers without touching PIL; for the
    rest PIL reads just the header (no pixel is decoded).
    """
    if not data:
        return None
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except Exception:  # PIL raises many types for junk; all mean "not an image we read"
        return None
    return _PIL_NAMES.get(fmt, fmt.lower()) or None


def prepare_image(data: bytes, limits: ImageLimits, name: str = "", *,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Validate `data` and make it fit `limits`; raise InputError when no conversion can.

    The image is decoded once: the full decode proves it is not truncated, and the same
    pixels feed any conversion.
    """
    label = name or "image"
    if not data:
        raise InputError(f"{label}: file is empty (0 bytes)", code="EmptyFile")
    fmt = detect_format(data)
    if fmt is None:
        raise InputError(f"{label}: not an image file (unrecognised content, {len(data)} bytes)",
                         code="UnidentifiedImage")

    with _open(data, fmt, label, max_pixels) as im:
        width, height = im.size
        if fmt == "jpeg" and max(width, height) > 2 * limits.max_side:
            # Let libjpeg decode at 1/2..1/8 scale: same truncation check, a fraction of the memory.
            scale = limits.max_side / max(width, height)
            im.draft(im.mode, (max(1, int(width * scale)), max(1, int(height * scale))))
        _load(im, fmt, label)
        orientation = im.getexif().get(0x0112, 1)  # after load: PNG keeps EXIF after the pixels
        # Engines differ in honouring EXIF rotation, so a rotated image is re-encoded upright;
        # CMYK/YCCK JPEGs are shown with wrong colours by many decoders, so they become RGB.
        fits = (fmt in limits.formats and max(width, height) <= limits.max_side
                and len(data) <= limits.max_bytes and orientation in (0, 1)
                and not (fmt == "jpeg" and im.mode not in ("L", "RGB")))
        if fits:
            return PreparedImage(data=data, format=fmt, width=width, height=height,
                                 original_bytes=len(data), original_format=fmt)
        out, out_fmt, (width, height) = _convert(im, fmt, orientation, limits, label)
    return PreparedImage(data=out, format=out_fmt, width=width, height=height,
                         original_bytes=len(data), original_format=fmt, converted=True)


def _open(data: bytes, fmt: str, label: str, max_pixels: int) -> Image.Image:
    """Open (header only) and check the declared size before any pixel is decoded."""
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise InputError(f"{label}: image is too large to decode safely ({exc})",
                         code="ImageTooLarge") from exc
    except UnidentifiedImageError as exc:
        # The magic number matched but PIL cannot read the header: broken or cut short.
        raise InputError(f"{label}: {fmt.upper()} header cannot be read (file corrupt or truncated)",
                         code="CorruptImage") from exc
    except Exception as exc:
        raise InputError(f"{label}: {fmt.upper()} cannot be opened: {exc}", code="CorruptImage") from exc

    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise InputError(f"{label}: image has zero size ({width}x{height})", code="ZeroSizeImage")
    if width * height > max_pixels:
        im.close()
        raise InputError(f"{label}: {width}x{height} pixels exceeds the limit of {max_pixels} "
                         "(possible decompression bomb)", code="ImageTooLarge")
    return im


def _load(im: Image.Image, fmt: str, label: str) -> None:
    """Decode the (first frame's) pixels completely; a cut-off file fails here."""
    try:
        im.load()
    except (OSError, EOFError) as exc:
        raise InputError(f"{label}: {fmt.upper()} image data is truncated or damaged ({exc})",
                         code="TruncatedImage") from exc
    except Exception as exc:  # SyntaxError, ValueError, struct.error from damaged streams
        raise InputError(f"{label}: {fmt.upper()} image data cannot be decoded ({exc})",
                         code="CorruptImage") from exc


def _convert(im: Image.Image, fmt: str, orientation: int, limits: ImageLimits,
             label: str) -> tuple[bytes, str, tuple[int, int]]:
    """Re-encode into an accepted format, applying orientation, size and byte limits."""
    accepted = [f for f in _OUTPUT_ORDER if f in limits.formats]
    if not accepted:
        raise InputError(f"{label}: the engine accepts none of the formats ocrlab can write "
                         f"({', '.join(sorted(limits.formats))})", code="UnsupportedFormat")
    # A JPEG stays JPEG when it may (a scan as PNG is several times larger); otherwise PNG.
    first = fmt if fmt in ("jpeg", "png") and fmt in accepted else accepted[0]

    img = im if orientation in (0, 1) else ImageOps.exif_transpose(im)
    img = _normalise_mode(img)
    if max(img.size) > limits.max_side:
        img = _resize(img, limits.max_side / max(img.size))

    for candidate, out_fmt, size in _encodings(img, first, accepted, limits.max_bytes):
        if len(candidate) <= limits.max_bytes:
            return candidate, out_fmt, size
    raise InputError(f"{label}: cannot be reduced under {limits.max_bytes} bytes even at "
                     f"{MIN_SIDE} px and low quality", code="ImageTooLarge")


def _encodings(img: Image.Image, first: str, accepted: list[str],
               max_bytes: int) -> Iterator[tuple[bytes, str, tuple[int, int]]]:
    """Ever smaller encodings, cheapest loss first: PNG, optimised PNG, JPEG, then downscaling."""
    if first == "jpeg":
        yield _encode(img, "jpeg", quality=95), "jpeg", img.size
    else:
        data = _encode(img, first)
        yield data, first, img.size
        # zlib level 9 rarely saves more than ~15%: only worth its time when that could do.
        if first == "png" and len(data) <= max_bytes * 1.25:
            yield _encode(img, "png", optimize=True), "png", img.size
    if "jpeg" in accepted:
        for quality in _JPEG_QUALITIES:
            yield _encode(img, "jpeg", quality=quality), "jpeg", img.size
    lossy = "jpeg" if "jpeg" in accepted else first
    while max(img.size) * _DOWNSCALE_STEP >= MIN_SIDE:
        img = _resize(img, _DOWNSCALE_STEP)
        yield _encode(img, lossy, quality=75), lossy, img.size


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Modes every writer and engine handle: L or RGB (1-bit kept as L for clean resampling)."""
    mode = img.mode
    if mode in ("L", "RGB"):
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # PIL's convert("L") clips 16-bit values at 255 (a white page); scale instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent background -> white paper, not the black that dropping alpha gives.
        base = "L" if mode in ("LA", "La") else "RGB"
        rgba = img.convert("LA" if base == "L" else "RGBA")
        flat = Image.new(base, img.size, 255 if base == "L" else (255, 255, 255))
        flat.paste(rgba.convert(base), mask=rgba.getchannel("A"))
        return flat
    if mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, ...


def _resize(img: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _encode(img: Image.Image, fmt: str, *, quality: int = 90, optimize: bool = False) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality, optimize=True)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality)
    elif fmt == "png":
        img.save(buf, "PNG", optimize=optimize)
    else:
        img.save(buf, fmt.upper())
    return buf.getvalue()
