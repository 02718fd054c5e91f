"""The image-folder dataset: the user's own <class>/<image> folders, shaped per model."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lenet5.cli.common import image_format_for
from lenet5.data import load_dataset
from lenet5.data.folder import IMAGE_SUFFIXES, FolderFormat, folder_format, image_files
from lenet5.errors import Lenet5Error
from tests.conftest import run_cli


def digit_png(path, kind: int, size=(60, 80), colour=False):
    """A dark stroke on light paper: a vertical bar (kind 0) or a ring (kind 1)."""
    img = Image.new("RGB" if colour else "L", size, "white")
    d = ImageDraw.Draw(img)
    if kind == 0:
        d.rectangle((size[0] // 2 - 4, 10, size[0] // 2 + 4, size[1] - 10), fill="black")
    else:
        d.ellipse((10, 10, size[0] - 10, size[1] - 10), outline="black", width=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_folder(root, per_class=5, colour=False, size=(60, 80)):
    for i in range(per_class):
        digit_png(root / "bar" / f"{i}.png", 0, size, colour)
        digit_png(root / "ring" / f"{i}.jpg", 1, size, colour)
    return root


def test_format_follows_the_model_registry():
    assert image_format_for("classic") == folder_format() == folder_format((1, 32, 32), 2)
    assert (folder_format().mode, folder_format().size) == ("digit", 28)
    assert image_format_for("alexnet") == folder_format((3, 224, 224)) == FolderFormat("rgb", 224)
    assert folder_format((1, 64, 64), 2) == FolderFormat("grey", 60)


def test_one_list_of_image_suffixes_for_folders_and_predict(tmp_path):
    """`lenet5 predict DIR` takes the files `imagefolder` loads, TIFF and PGM too."""
    from lenet5.predict import find_images

    for i, suffix in enumerate(IMAGE_SUFFIXES):
        Image.new("L", (8, 8), 255).save(tmp_path / f"{i:02d}{suffix}",
                                         format="PPM" if suffix in (".pgm", ".pbm") else None)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    want = sorted(tmp_path / f"{i:02d}{s}" for i, s in enumerate(IMAGE_SUFFIXES))
    assert image_files(tmp_path) == want
    assert [path for _, path, _ in find_images([tmp_path])] == want
    assert {".tif", ".tiff", ".webp"} <= set(IMAGE_SUFFIXES)


def test_digits_are_mnistified_and_split_by_class(tmp_path):
    data = load_dataset("imagefolder", make_folder(tmp_path), image_format=image_format_for("modern"))
    assert data.classes == ("bar", "ring")
    assert data.train.images.shape == (8, 28, 28) and len(data.test) == 2
    assert sorted(data.test.labels.tolist()) == [0, 1]  # one of each class held out
    img = data.train.images[0].numpy()
    assert img[0].max() == 0 and img.max() == 255  # ink bright on black, margins empty
    again = load_dataset("imagefolder", tmp_path, image_format=image_format_for("modern"))
    assert again.content_hash == data.content_hash  # the seeded split is the same
    assert np.array_equal(again.test.images, data.test.images)


def test_colour_images_are_resized_and_cropped_for_alexnet(tmp_path):
    root = tmp_path / "f"
    make_folder(root / "train", 2, colour=True, size=(300, 250))
    make_folder(root / "test", 1, colour=True, size=(250, 300))
    data = load_dataset("imagefolder", root, image_format=image_format_for("alexnet"))
    assert data.train.images.shape == (4, 3, 224, 224) and data.in_channels == 3
    assert data.test.images.shape == (2, 3, 224, 224)


def test_bad_folders_are_refused_clearly(tmp_path):
    with pytest.raises(Lenet5Error, match="needs --data-dir ROOT"):
        load_dataset("imagefolder", None)
    (tmp_path / "only").mkdir()
    with pytest.raises(Lenet5Error, match="at least two class subfolders"):
        load_dataset("imagefolder", tmp_path)
    make_folder(tmp_path / "x", 2)
    (tmp_path / "x" / "bar" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(Lenet5Error, match="broken.png: not an image"):
        load_dataset("imagefolder", tmp_path / "x")


def test_cli_trains_on_an_image_folder(tmp_path):
    make_folder(tmp_path / "f", 4)
    out = tmp_path / "m.safetensors"
    r = run_cli("train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "f"),
                "--model", "modern", "--epochs", "1", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    from lenet5.checkpoint import load_checkpoint

    assert load_checkpoint(out).classes == ("bar", "ring")
