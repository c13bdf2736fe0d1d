"""cifar.imageio: every common format decodes to the right RGB pixels; bad input gets ImageError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from cifar.errors import CifarError, DataError
from cifar.imageio import ImageError, encode_png, load_image, load_images

_NOISE_PNG = encode_png(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _gradient(height: int = 24, width: int = 40) -> np.ndarray:
    """A smooth colour image: lossy codecs keep it close, so pixel checks stay meaningful."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [255 * x / (width - 1), 255 * y / (height - 1), np.full_like(x, 90.0)], axis=-1
    ).astype(np.uint8)


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (tiny file, any claimed size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("fmt", "max_mean_error"), [("PNG", 0), ("BMP", 0), ("JPEG", 3), ("WEBP", 3), ("GIF", 8)]
)
def test_formats_decode_to_the_same_pixels(fmt, max_mean_error):
    pixels = _gradient()
    img = Image.fromarray(pixels)
    if fmt == "GIF":
        img = img.quantize(256)
    decoded = load_image(_encode(img, fmt))
    assert decoded.shape == pixels.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - pixels).mean() <= max_mean_error


def test_gif_gives_the_first_frame():
    red, blue = (Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255)))
    data = _encode(red, "GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = load_image(data)
    assert tuple(decoded[8, 8]) == (255, 0, 0)


def test_modes_become_rgb():
    gray = Image.fromarray(np.full((8, 8), 77, np.uint8), "L")
    assert np.all(load_image(_encode(gray, "PNG")) == 77)
    palette = Image.fromarray(_gradient()).quantize(16)
    assert load_image(_encode(palette, "PNG")).shape == (24, 40, 3)
    sixteen = Image.fromarray(np.full((8, 8), 300 * 257 // 2, np.uint16))  # ~150 in 8 bits
    assert abs(int(load_image(_encode(sixteen, "PNG"))[0, 0, 0]) - 150) <= 1
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    r, g, b = load_image(_encode(cmyk, "JPEG"))[4, 4]
    assert r > 200 and g < 60 and b < 60


def test_transparency_is_composited_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200  # red but fully transparent on the left half
    rgba[:, 4:, 3] = 255
    decoded = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 7]) == (200, 0, 0)


def test_exif_orientation_is_applied():
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :10] = (255, 0, 0)  # left half red: after a 90-degree turn it is the top or bottom
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    decoded = load_image(_encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert decoded.shape == (20, 10, 3)
    assert decoded[2, 5, 0] > 200 and decoded[17, 5, 0] < 60  # red ends up on top


def test_resize_to_a_square_and_the_source_kinds(tmp_path):
    pixels = _gradient(60, 90)
    png = encode_png(pixels)
    path = tmp_path / "g.png"
    path.write_bytes(png)
    sources = [png, bytearray(png), str(path), path, io.BytesIO(png), Image.fromarray(pixels)]
    decoded = [load_image(s, size=32) for s in sources]
    assert all(d.shape == (32, 32, 3) for d in decoded)
    assert all(np.array_equal(d, decoded[0]) for d in decoded)
    from_array = load_image(pixels, size=32)
    assert np.array_equal(from_array, decoded[0])
    assert load_image(pixels.astype(np.float32), size=32).dtype == np.uint8
    assert load_image(pixels[..., 0], size=32).shape == (32, 32, 3)
    batch = load_images([png, pixels], size=32)
    assert batch.shape == (2, 32, 32, 3) and np.array_equal(batch[0], batch[1])


def test_large_jpeg_is_decoded_at_reduced_scale_consistently():
    photo = Image.fromarray(_gradient(1200, 1600))
    small = load_image(_encode(photo, "JPEG", quality=90), size=32)
    reference = np.asarray(ImageOps.fit(photo, (32, 32), Image.Resampling.BILINEAR))
    assert small.shape == (32, 32, 3)
    assert np.abs(small.astype(int) - reference).mean() < 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plain text, not an image", "not a recognised image"),
        (_NOISE_PNG[: len(_NOISE_PNG) // 2], "truncated or corrupt"),
        (_png_header(0, 16), "not a recognised image"),
        (_png_header(50_000, 50_000), "too large"),
        (_encode(Image.new("RGB", (4, 4)), "PPM"), "not a recognised image"),
    ],
    ids=["empty", "text", "truncated", "zero-pixel", "bomb-50000x50000", "ppm"],
)
def test_bad_bytes_raise_image_error(data, message):
    with pytest.raises(ImageError, match=message) as info:
        load_image(data, size=32, name="upload.png")
    assert isinstance(info.value, CifarError)
    assert str(info.value).startswith("upload.png: ")


def test_pixel_limit_is_checked_before_decoding():
    data = encode_png(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ImageError, match=r"100x100 = 10,000 pixels \(the limit is 5,000\)"):
        load_image(data, max_pixels=5000)


def test_bad_paths_and_arrays(tmp_path):
    with pytest.raises(ImageError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty image file"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(ImageError, match="zero pixels"):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError, match="expected an H x W"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="cannot read an image from a int"):
        load_image(42)
    with pytest.raises(ImageError, match="b.png: not a recognised image"):
        load_images([encode_png(_gradient()), b"nope"], size=8, names=["a.png", "b.png"])


def test_image_folder_uses_the_decoder(tmp_path):
    from cifar.data import load_image_folder

    for name, colour in (("cats", (200, 10, 10)), ("dogs", (10, 10, 200))):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(5):
            rgba = Image.new("RGBA", (40, 30), (*colour, 255))
            rgba.putpixel((0, 0), (i, i, i, 255))  # distinct files: copies would be refused
            rgba.save(folder / f"{i}.png")
    data = load_image_folder(tmp_path, image_size=16, test_fraction=0.4)
    assert data.x_train.shape[1:] == (16, 16, 3)
    assert data.class_names == ["cats", "dogs"]
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"1 unreadable image file\(s\)[\s\S]*broken.png: "):
        load_image_folder(tmp_path, image_size=16)
