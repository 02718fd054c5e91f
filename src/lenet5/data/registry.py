"""Datasets known to lenet5: file names, mirrors, content hashes, class names.

Every file is verified before use. The strongest check is the SHA-256 of the file's
decompressed content (``sha256``): it holds for every copy however it was compressed.
Where no such hash is published, the spec says so in a comment and carries what is
published instead: the MD5 of the canonical ``.gz`` download (``gz_md5``), or of the
archive the files ship in (``archive``). A file verified that way when it is downloaded
has its content SHA-256 recorded in the cache (``verified.json``), so later loads from the
cache are checked by content too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Registry
from .idx import INT32, UBYTE, IdxFormat

SPLITS = ("train", "test")
IMAGE_FOLDER = "imagefolder"  # not a registered dataset: the user's own folders (folder.py)


@dataclass(frozen=True)
class Archive:
    """The dataset's files ship inside one zip archive (EMNIST): its name on the mirrors,
    the published MD5 of the archive, and where each file lies inside it."""

    name: str
    md5: str
    members: dict[str, str]  # canonical file name -> member path of its .gz in the zip
    size: int  # bytes: a download is refused as soon as it exceeds this


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    # split -> (images file, labels file), canonical names without ".gz"
    files: dict[str, tuple[str, str]]
    # canonical file name (no ".gz") -> SHA-256 of its decompressed content
    sha256: dict[str, str]
    # base URLs; the file ``<name>.gz`` (or the archive) is fetched from each in turn
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    # canonical file name -> MD5 of the canonical .gz download (where no content hash is published)
    gz_md5: dict[str, str] = field(default_factory=dict)
    archive: Archive | None = None
    # split -> number of images; checked on every load, whatever else can be verified
    sizes: dict[str, int] = field(default_factory=dict)
    # 0: labels are an IDX1 vector of unsigned bytes; N: an IDX2 int32 matrix of N columns
    # whose first column is the class (QMNIST)
    label_columns: int = 0
    # images are stored transposed (column-major, as EMNIST's are): transpose on load
    transposed: bool = False
    # (height, width) of every image: checked in the IDX header before the data is read
    image_size: tuple[int, int] = (28, 28)
    # A composed dataset has no files: it is made in memory from the registered digit
    # dataset ``base`` (strings.py: numbers written with its digits); ``prepare`` gets the
    # base. ``task``: what a model does with it, "classify" (one label per image) or
    # "read" (a sequence of labels per image); models carry the same field.
    base: str | None = None
    task: str = "classify"

    @property
    def file_names(self) -> list[str]:
        return [f for split in SPLITS for f in self.files.get(split, ())]

    def is_images(self, file_name: str) -> bool:
        return any(file_name == images for images, _ in self.files.values())

    def idx_format(self, file_name: str) -> IdxFormat:
        """What the file's IDX header must say: its type, its shape (the image size; for
        labels, the columns), at most as many entries as its split has images. This bounds
        what reading or downloading the file may cost (idx.py, download.py)."""
        split = next(s for s, pair in self.files.items() if file_name in pair)
        count = self.sizes.get(split)
        if self.is_images(file_name):
            return IdxFormat((None, *self.image_size), (UBYTE,), count)
        if self.label_columns:
            return IdxFormat((None, self.label_columns), (INT32,), count)
        return IdxFormat((None,), (UBYTE,), count)

    def verifiable(self, file_name: str) -> bool:
        """Whether a published hash exists for the file's content (not only its .gz)."""
        return file_name in self.sha256


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    return DATASETS.add(spec.name, spec)


def list_datasets() -> list[str]:
    return DATASETS.names()


def get_dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.get(name)


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST = register_dataset(
    DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits (LeCun, Cortes, Burges)",
        files=_MNIST_FILES,
        # Published SHA-256 of the decompressed files (also in shared/data/README.md).
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        classes=tuple(str(d) for d in range(10)),
        sizes={"train": 60000, "test": 10000},
    )
)

DIGITS = tuple(str(d) for d in range(10))

FASHION_MNIST = register_dataset(
    DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST: Zalando's article images (Xiao, Rasul, Vollgraf 2017)",
        files=_MNIST_FILES,
        # SHA-256 of the decompressed files, from shared/data/README.md; checked here against
        # Debian's dataset-fashion-mnist package, whose .gz files are recompressed (their
        # MD5s differ from the canonical downloads) but whose content is identical.
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
        sizes={"train": 60000, "test": 10000},
    )
)

KMNIST = register_dataset(
    DatasetSpec(
        name="kmnist",
        title="Kuzushiji-MNIST: cursive Japanese hiragana (Clanuwat et al. 2018)",
        files=_MNIST_FILES,
        # No SHA-256 of the decompressed files is published. What is published is the MD5 of
        # each canonical .gz download, as torchvision's datasets/mnist.py (class KMNIST)
        # lists them; a download is verified by it, and its content SHA-256 recorded then.
        sha256={},
        gz_md5={
            "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
            "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
            "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
            "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
        },
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        # The romanised names of the ten hiragana, in label order (rois-codh/kmnist).
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        sizes={"train": 60000, "test": 10000},
    )
)

QMNIST = register_dataset(
    DatasetSpec(
        name="qmnist",
        title="QMNIST: MNIST reconstructed from NIST, with the 50,000 lost test digits (Yadav, Bottou 2019)",
        # Labels are IDX2 int32, 8 columns per image: class, NIST HSF series, writer id,
        # digit index, NIST class, global NIST index, duplicate flag, unused. lenet5 trains on
        # column 0, the class. The test split is all 60,000 QMNIST test digits (its first
        # 10,000 match MNIST's test set).
        files={
            "train": ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int"),
            "test": ("qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),
        },
        # No SHA-256 of the decompressed files is published; the MD5s of the canonical .gz
        # downloads are those torchvision's datasets/mnist.py (class QMNIST) lists.
        sha256={},
        gz_md5={
            "qmnist-train-images-idx3-ubyte": "ed72d4157d28c017586c42bc6afe6370",
            "qmnist-train-labels-idx2-int": "0058f8dd561b90ffdd0f734c6a30e5e4",
            "qmnist-test-images-idx3-ubyte": "1394631089c404de565df7b7aeaf9412",
            "qmnist-test-labels-idx2-int": "5b5b05890a5e13444e108efe57b788aa",
        },
        mirrors=("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",),
        classes=DIGITS,
        sizes={"train": 60000, "test": 60000},
        label_columns=8,
    )
)

_EMNIST_DIGITS_FILES = {
    "train": ("emnist-digits-train-images-idx3-ubyte", "emnist-digits-train-labels-idx1-ubyte"),
    "test": ("emnist-digits-test-images-idx3-ubyte", "emnist-digits-test-labels-idx1-ubyte"),
}

EMNIST_DIGITS = register_dataset(
    DatasetSpec(
        name="emnist-digits",
        title="EMNIST Digits: NIST SD 19 digits in MNIST's format (Cohen et al. 2017)",
        files=_EMNIST_DIGITS_FILES,
        # EMNIST ships as one zip (gzip.zip, about 560 MB) of .gz files for all six splits.
        # Neither the SHA-256 of the decompressed files nor the MD5 of the single .gz files
        # is published; the MD5 of the zip is (torchvision's datasets/mnist.py, class EMNIST).
        # A download is verified by it (and the zip's CRC-32 of each member), and the files'
        # content SHA-256 is recorded in the cache then.
        sha256={},
        archive=Archive(
            name="gzip.zip",
            md5="58c8d27c78d21e728a6bc7b3cc06412e",
            size=561_753_746,  # as tensorflow/datasets' url_checksums/emnist.txt records it
            members={f: f"gzip/{f}.gz" for pair in _EMNIST_DIGITS_FILES.values() for f in pair},
        ),
        mirrors=(
            "https://biometrics.nist.gov/cs_links/EMNIST/",
            "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/",
        ),
        classes=DIGITS,
        sizes={"train": 240000, "test": 40000},
        transposed=True,
    )
)

MNIST_STRINGS = register_dataset(
    DatasetSpec(
        name="mnist-strings",
        title="Handwritten numbers composed from MNIST digits (training strings from training "
              "digits, test strings from test digits)",
        files={}, sha256={}, mirrors=(), classes=DIGITS,
        base="mnist", task="read",
    )
)
