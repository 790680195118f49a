"""Preflight: format from bytes, passthrough, conversions, size limits, and InputError codes."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ocrlab.errors import InputError
from ocrlab.ocr.engines.base import ImageLimits
from ocrlab.ocr.preflight import detect_format, prepare_image
from ocrlab.taxonomy import FailureType, classify

# What Bedrock's Converse API takes for an image block.
BEDROCK = ImageLimits(formats=frozenset({"png", "jpeg", "gif", "webp"}),
                      max_bytes=3_750_000, max_side=8000)


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def page(size=(400, 300), mode="RGB") -> Image.Image:
    """A white page with a black bar: enough structure to check pixels survive conversion."""
    img = Image.new("RGB", size, "white")
    img.paste((0, 0, 0), (20, 20, size[0] // 2, 40))
    return img.convert(mode)


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG claiming any size, with (almost) no pixel data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("fmt, pil_name", [
    ("png", "PNG"), ("jpeg", "JPEG"), ("gif", "GIF"), ("webp", "WEBP"),
    ("tiff", "TIFF"), ("bmp", "BMP"), ("ico", "ICO"), ("ppm", "PPM"),
])
def test_detect_format_from_bytes(fmt, pil_name):
    assert detect_format(encode(page((64, 64)), pil_name)) == fmt


@pytest.mark.parametrize("data", [b"", b"hello, world\n", b"\x00" * 64])
def test_detect_format_none_for_non_images(data):
    assert detect_format(data) is None


def test_png_that_fits_passes_through_byte_identical():
    data = encode(page(), "PNG")
    prepared = prepare_image(data, BEDROCK, "sheet.png")
    assert prepared.data is data
    assert (prepared.format, prepared.converted) == ("png", False)
    assert (prepared.width, prepared.height, prepared.original_bytes) == (400, 300, len(data))


def test_jpeg_named_png_is_detected_as_jpeg():
    data = encode(page(), "JPEG", quality=90)
    prepared = prepare_image(data, BEDROCK, "scan.png")
    assert prepared.format == prepared.original_format == "jpeg"
    assert prepared.data is data and not prepared.converted


@pytest.mark.parametrize("pil_name, fmt", [("TIFF", "tiff"), ("BMP", "bmp")])
def test_unaccepted_formats_become_png_losslessly(pil_name, fmt):
    original = page()
    prepared = prepare_image(encode(original, pil_name), BEDROCK, f"x.{fmt}")
    assert (prepared.format, prepared.original_format, prepared.converted) == ("png", fmt, True)
    assert prepared.data.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(decode(prepared.data)), np.asarray(original))


def test_multipage_tiff_keeps_first_page():
    first, second = page(), Image.new("RGB", (400, 300), "red")
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    prepared = prepare_image(data, BEDROCK, "two-pages.tif")
    assert np.array_equal(np.asarray(decode(prepared.data)), np.asarray(first))


def test_cmyk_jpeg_becomes_rgb():
    data = encode(page(mode="CMYK"), "JPEG", quality=95)
    prepared = prepare_image(data, BEDROCK, "cmyk.jpg")
    out = decode(prepared.data)
    assert prepared.converted and out.mode == "RGB"
    assert out.getpixel((300, 200))[0] > 240 and out.getpixel((50, 30))[0] < 15  # white page, black bar


def test_16bit_tiff_scaled_not_clipped_to_white():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    prepared = prepare_image(encode(Image.fromarray(ramp), "TIFF"), BEDROCK, "deep.tif")
    out = np.asarray(decode(prepared.data))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255 and 100 < out[0, 128] < 155


def test_transparent_background_becomes_white():
    la = Image.new("LA", (100, 50), (0, 0))            # fully transparent black
    la.paste((0, 255), (10, 10, 30, 20))               # an opaque black mark
    prepared = prepare_image(encode(la, "TIFF"), BEDROCK, "alpha.tif")
    out = decode(prepared.data)
    assert out.mode == "L" and out.getpixel((80, 40)) == 255 and out.getpixel((15, 15)) == 0


def test_palette_bmp_becomes_rgb_png():
    prepared = prepare_image(encode(page().convert("P"), "BMP"), BEDROCK, "pal.bmp")
    assert decode(prepared.data).mode == "RGB"


def test_exif_orientation_applied():
    exif = Image.Exif()
    exif[0x0112] = 6                                    # rotate 90 degrees clockwise to display
    data = encode(page((400, 300)), "JPEG", exif=exif.tobytes())
    prepared = prepare_image(data, BEDROCK, "phone.jpg")
    assert prepared.converted and (prepared.width, prepared.height) == (300, 400)
    assert decode(prepared.data).getexif().get(0x0112, 1) == 1


def test_long_side_downscaled_keeping_aspect():
    data = encode(Image.new("L", (9000, 300), 255), "PNG")
    prepared = prepare_image(data, BEDROCK, "wide.png")
    assert (prepared.width, prepared.height) == (8000, 267) and prepared.format == "png"
    assert decode(prepared.data).size == (8000, 267)


def test_huge_jpeg_downscaled_via_reduced_decode():
    data = encode(Image.new("RGB", (17000, 1000), "white"), "JPEG")
    prepared = prepare_image(data, BEDROCK, "huge.jpg")
    assert (prepared.width, prepared.height, prepared.format) == (8000, 471, "jpeg")


def test_noisy_png_over_byte_limit_recompressed():
    noise = np.random.default_rng(7).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    assert len(data) > BEDROCK.max_bytes
    prepared = prepare_image(data, BEDROCK, "noise.png")
    assert prepared.converted and len(prepared.data) <= BEDROCK.max_bytes
    assert prepared.format == "jpeg" and decode(prepared.data).size == (1200, 1200)


def test_png_only_engine_shrinks_instead_of_jpeg():
    noise = np.random.default_rng(7).integers(0, 256, (600, 600), dtype=np.uint8)
    limits = ImageLimits(formats=frozenset({"png"}), max_bytes=200_000, max_side=8000)
    prepared = prepare_image(encode(Image.fromarray(noise), "PNG"), limits, "noise.png")
    assert prepared.format == "png" and len(prepared.data) <= 200_000 and prepared.width < 600


def truncated(pil_name: str) -> bytes:
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), pil_name)
    return data[: len(data) // 2]


@pytest.mark.parametrize("data, code", [
    (b"", "EmptyFile"),
    (b"   \n", "UnidentifiedImage"),
    (b"Employee: Maria Gonzalez\nTotal hours: 16.5\n", "UnidentifiedImage"),
    (truncated("PNG"), "TruncatedImage"),
    (truncated("JPEG"), "TruncatedImage"),
    (truncated("TIFF"), "TruncatedImage"),
    (encode(page(), "PNG")[:30], "CorruptImage"),       # magic intact, header cut
    (png_header_only(0, 10), "CorruptImage"),           # zero-width image
    (png_header_only(100_000, 100_000), "ImageTooLarge"),
], ids=["zero-byte", "blank", "text-as-png", "trunc-png", "trunc-jpeg", "trunc-tiff",
        "cut-header", "zero-width", "bomb"])
def test_bad_inputs_raise_input_error(data, code):
    with pytest.raises(InputError) as info:
        prepare_image(data, BEDROCK, "batch/week43.png")
    assert info.value.code == code
    assert "batch/week43.png" in str(info.value)
    assert classify(info.value) == (FailureType.INPUT_ERROR, code)


def test_pixel_limit_checked_before_decoding():
    with pytest.raises(InputError) as info:
        prepare_image(png_header_only(12_000, 5_000), BEDROCK, "big.png", max_pixels=50_000_000)
    assert info.value.code == "ImageTooLarge"


def test_nothing_fits_raises_input_error():
    noise = np.random.default_rng(3).integers(0, 256, (800, 800, 3), dtype=np.uint8)
    limits = ImageLimits(formats=frozenset({"png", "jpeg"}), max_bytes=2_000, max_side=8000)
    with pytest.raises(InputError) as info:
        prepare_image(encode(Image.fromarray(noise), "PNG"), limits, "noise.png")
    assert info.value.code == "ImageTooLarge"
