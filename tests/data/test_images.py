"""User images to MNIST digits: the geometry of the preprocessing, and the refusals."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lenet5.data.images import MAX_SIDE, load_digit, mnistify, open_image
from lenet5.errors import Lenet5Error

STROKE = [(40, 30), (40, 150), (90, 150)]  # an "L", 120 px tall and 50 wide, off-centre


def drawing(mode="L", paper=255, ink=0, size=(300, 200)) -> Image.Image:
    img = Image.new(mode, size, paper)
    ImageDraw.Draw(img).line(STROKE, fill=ink, width=12)
    return img


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    a = a.astype(np.float64)
    ys, xs = np.indices(a.shape)
    return (ys * a).sum() / a.sum(), (xs * a).sum() / a.sum()


def png(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_off_centre_digit_ends_centred_by_mass_in_a_20px_box():
    out = mnistify(drawing())
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # ink bright on black
    ys, xs = np.nonzero(out)
    assert ys.max() - ys.min() + 1 == 20  # the longer side (height) fills the 20 px box
    assert 7 <= xs.max() - xs.min() + 1 <= 10  # aspect ratio kept: 50/120 * 20 = 8.3 (+ stroke blur)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_wide_digit_scales_its_width_to_20():
    img = Image.new("L", (400, 100), 255)
    ImageDraw.Draw(img).line([(20, 50), (380, 50)], fill=0, width=30)
    ys, xs = np.nonzero(mnistify(img))
    assert xs.max() - xs.min() + 1 == 20 and ys.max() - ys.min() + 1 <= 4


def test_dark_on_light_and_light_on_dark_give_the_same_digit():
    light_paper = mnistify(drawing(paper=255, ink=0))
    dark_paper = mnistify(drawing(paper=0, ink=255))
    grey_paper = mnistify(drawing(paper=200, ink=30))  # a greyish photo, lower contrast
    assert np.array_equal(light_paper, dark_paper)
    assert np.abs(grey_paper.astype(int) - light_paper.astype(int)).max() <= 2


def test_colour_and_alpha_input():
    reference = mnistify(drawing())
    colour = mnistify(drawing("RGB", paper=(250, 240, 200), ink=(200, 20, 20)))
    transparent = mnistify(drawing("RGBA", paper=(0, 0, 0, 0), ink=(0, 0, 0, 255)))
    la = mnistify(drawing("LA", paper=(255, 0), ink=(0, 255)))
    for out in (colour, transparent, la):
        assert np.abs(out.astype(int) - reference.astype(int)).max() <= 2


def test_load_digit_reads_every_format():
    reference = mnistify(drawing())
    for fmt in ("PNG", "BMP", "GIF", "WEBP", "JPEG"):
        out = load_digit(png(drawing(), fmt), f"x.{fmt.lower()}")
        tol = 40 if fmt in ("JPEG", "WEBP") else 0  # lossy formats blur the edges a little
        assert np.abs(out.astype(int) - reference.astype(int)).max() <= tol, fmt
        assert abs(centre_of_mass(out)[0] - centre_of_mass(reference)[0]) < 0.3


@pytest.mark.parametrize("data, message", [
    (b"", "file is empty"),
    (b"hello, not an image", "not an image"),
    (png(drawing())[:300], "cannot decode image"),
])
def test_bad_bytes_are_refused_in_one_line(data, message):
    with pytest.raises(Lenet5Error, match=message) as e:
        load_digit(data, "bad.png")
    assert "\n" not in str(e.value) and str(e.value).startswith("bad.png: ")


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: what a decompression bomb looks like
    before it is decoded."""
    data = bytearray(png(Image.new("L", (8, 8), 255)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_enormous_image_and_bomb_are_refused_before_decoding():
    with pytest.raises(Lenet5Error, match=r"bomb.png: refused as a decompression bomb"):
        open_image(png_claiming(30000, 30000), "bomb.png")  # 900 Mpixel from 100 bytes
    with pytest.raises(Lenet5Error, match=rf"wide.png: image is {MAX_SIDE + 1}x8, larger than"):
        open_image(png_claiming(MAX_SIDE + 1, 8), "wide.png")
    open_image(png(Image.new("L", (MAX_SIDE, 8), 255)), "ok.png")  # the limit itself is fine


def test_no_ink():
    for img in (Image.new("L", (64, 64), 255), Image.new("RGB", (64, 64), (30, 30, 30)),
                Image.new("RGBA", (64, 64), (0, 0, 0, 0))):
        with pytest.raises(Lenet5Error, match="no ink found"):
            mnistify(img, "blank.png")


def test_missing_file(tmp_path):
    with pytest.raises(Lenet5Error, match="cannot read"):
        load_digit(tmp_path / "nope.png")


# -- bounded work: what open_image reads and decodes ------------------------------------
def test_a_large_upload_is_decoded_then_scaled_to_the_working_size():
    from lenet5.data.images import WORK_SIDE

    big = Image.new("RGBA", (2400, 2400), (0, 0, 0, 0))  # ~25 KB as PNG, 23 MB decoded
    ImageDraw.Draw(big).line([(1200, 300), (1200, 2100)], fill=(0, 0, 0, 255), width=180)
    data = png(big)
    img = open_image(data, "big.png")
    assert img.size == (WORK_SIDE, WORK_SIDE)
    assert open_image(data, "big.png", max_side=None).size == (2400, 2400)
    out = mnistify(img)
    ys, xs = np.nonzero(out)
    assert ys.max() - ys.min() + 1 == 20 and xs.max() - xs.min() + 1 <= 5  # still a "1"


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    """6000x4000 (24 megapixels) is over the pixel budget as PNG, fine as a JPEG read at 1/4."""
    from lenet5.data.images import MAX_PIXELS, decode_pixels

    photo = drawing("RGB", paper=(250, 250, 250), ink=(20, 20, 20), size=(600, 400)).resize((6000, 4000))
    jpeg, as_png = png(photo, "JPEG"), png(photo.convert("L"))
    assert 6000 * 4000 > MAX_PIXELS
    assert decode_pixels(jpeg) == 1500 * 1000  # what the decoder will make: 1/4 scale
    img = open_image(jpeg, "photo.jpg")
    assert img.size == (1024, 683)
    reference = mnistify(drawing())
    assert np.abs(mnistify(img).astype(int) - reference.astype(int)).max() <= 60
    assert decode_pixels(as_png) == 0
    with pytest.raises(Lenet5Error, match=r"photo.png: image is 6000x4000, 24.0 megapixels: more than 16.8"):
        open_image(as_png, "photo.png")


def test_exif_rotation_survives_the_reduced_decode():
    from PIL import ImageOps

    wide = drawing("RGB", size=(3000, 2000))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    buf = io.BytesIO()
    wide.save(buf, "JPEG", exif=exif.tobytes())
    img = open_image(buf.getvalue(), "phone.jpg")
    assert img.size == (1024, 683) and ImageOps.exif_transpose(img).size == (683, 1024)


@pytest.mark.parametrize("mode", ["P", "1", "I;16", "LA", "CMYK"])
def test_every_mode_scales_down(mode):
    img = drawing(size=(2000, 1500)).convert(mode if mode != "P" else "RGB")
    if mode == "P":
        img = img.convert("P")
    fmt = "TIFF" if mode in ("I;16", "CMYK") else "PNG"
    out = open_image(png(img, fmt), f"x.{fmt.lower()}")
    assert max(out.size) == 1024
    assert np.abs(mnistify(out).astype(int) - mnistify(drawing()).astype(int)).max() <= 80


def test_what_is_not_a_regular_file_is_refused_unread(tmp_path):
    """/dev/zero would be read without end and a FIFO would block forever on open."""
    import os
    import threading

    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    cases = {"/dev/zero": "not a regular file (a device)", str(fifo): "not a regular file (a FIFO)",
             str(tmp_path): "not a regular file (a directory)"}
    for path, message in cases.items():
        said: list[str | None] = []
        t = threading.Thread(target=lambda p=path, out=said: out.append(_refusal(p)), daemon=True)
        t.start()
        t.join(20)
        assert not t.is_alive(), f"{path}: still reading"
        assert said == [f"{path}: {message}"]


def _refusal(path) -> str | None:
    try:
        open_image(path)
    except Lenet5Error as e:
        return str(e)
    return None


def test_a_file_over_the_size_bound_is_refused(tmp_path):
    from lenet5.data.images import MAX_FILE_BYTES

    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(Lenet5Error, match=r"big.png: file is too large \(over 64 MB\)"):
        open_image(big)


def test_only_known_formats_are_opened():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"  # Pillow would run Ghostscript
    with pytest.raises(Lenet5Error, match=r"x.eps: not an image \(PNG, JPEG, BMP, GIF, WEBP, ...\)"):
        open_image(eps, "x.eps")
