"""Fashion-MNIST: found offline first, checked, and served from the training device.

The whole dataset is 70,000 grayscale 28x28 images, 55 MB as uint8. It fits on any GPU, so we
put it there once and cut every mini-batch out of it on the device: the float conversion, the
resize (bilinear, as the book's ``transforms.Resize``) and the augmentation all run per batch
as a handful of tensor operations. There is no DataLoader, no PIL and no per-image Python in
the training loop, which is where the book's pipeline spends most of its time.

Where the files come from, in order:

1. a path you pass (``root=``),
2. ``$D2LCNN_DATA``,
3. ``data/`` in the repository (or in the working directory when installed from PyPI/git),
4. the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``),
5. otherwise torchvision downloads it into the first of those folders.

A folder you name (1 or 2) is the one used: when it lacks a file, torchvision downloads into it
(if allowed) or :class:`DataError` names the missing files, never another copy quietly read
instead. A folder you name that does not exist (a typo) is said so, and nothing is created.
The default places (3, 4) are searched in turn; the first holding all four files wins.
``FashionMNIST``'s repr says which folder was used and how it was found.

Every file is checked (magic number, count, image size, label range) and a bad one raises
:class:`DataError` naming the file and what to do. Its content is then compared with the
official release's (:data:`OFFICIAL_SHA256`): a file that differs (damaged, labels shifted, or
another dataset in the same format) loads with a :class:`DataWarning` naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .guards import check_count
from .runtime import default_device

CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot")
"""The ten class names, index = label (the same text labels as the book)."""

MEAN, STD = 0.2860, 0.3530
"""Pixel mean and standard deviation of the training set (on the 0..1 scale)."""

ENV_VAR = "D2LCNN_DATA"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# split -> (images file, labels file, number of examples); names as in the original release.
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # 0x00000803 and 0x00000801 in the IDX format
SIZE = 28

OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
"""SHA-256 of each file of the official release (zalandoresearch/fashion-mnist), uncompressed: a
gzip's own bytes differ between packagings (Debian's are recompressed), its content does not.
Computed from the Debian package's files, whose uncompressed MD5s are the ones published for the
release (f4a8712d..., 9018921c..., 8181f547..., 15d48437...)."""

HOW_TO_GET = """Ways to get Fashion-MNIST:
  * on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist  (offline, found automatically)
  * with a network: run again with download allowed; torchvision fetches it into data/
  * by hand: put the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
    t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (from the zalandoresearch/fashion-mnist
    repository) into data/ or a folder named by $D2LCNN_DATA"""


class DataError(RuntimeError):
    """Fashion-MNIST is missing, incomplete or corrupt; the message says which file and what to do."""


class DataWarning(UserWarning):
    """A file that passed every check but is not the official release's (damaged, or another dataset)."""


# ----------------------------------------------------------------------------------------------
# Finding and reading the files
# ----------------------------------------------------------------------------------------------

def default_data_dir() -> Path:
    """``data/`` of the repository when the package runs from a checkout, else ``./data``."""
    if (REPO_DATA_DIR.parent / "pyproject.toml").exists():
        return REPO_DATA_DIR
    return Path.cwd() / "data"


GIVEN, FROM_ENV = "the path given", f"${ENV_VAR}"
"""How a folder named by the user was found: these must hold the data; the defaults may not."""


def search_path(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places searched, in order, each with the reason it is on the list."""
    places = []
    if root is not None:
        places.append((GIVEN, Path(root)))
    if os.environ.get(ENV_VAR):
        places.append((FROM_ENV, Path(os.environ[ENV_VAR])))
    places.append(("the project's data/ folder", default_data_dir()))
    places.append(("the Debian package dataset-fashion-mnist", DEBIAN_DIR))
    return places


def _find_file(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder`` or in torchvision's ``folder/FashionMNIST/raw``."""
    for sub in (folder, folder / "FashionMNIST" / "raw"):
        for candidate in (sub / name, sub / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


FILES = tuple(name for images, labels, _ in SPLITS.values() for name in (images, labels))


def missing_files(folder: Path) -> list[str]:
    """The names of the four IDX files that ``folder`` lacks (none: it holds the dataset)."""
    return [name for name in FILES if _find_file(folder, name) is None]


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder``, or None unless all four are there."""
    found = {name: _find_file(folder, name) for name in FILES}
    return None if None in found.values() else found


def _incomplete(folder: Path, found_by: str, others: list[Path], why: str = "") -> DataError:
    """The error for a folder the user named that lacks files: which ones, and the ways out
    (``others``: the places searched after it, where a complete copy may be)."""
    missing = missing_files(folder)
    state = ("does not exist (nothing was created: make it first to have the data downloaded there)"
             if not folder.is_dir() else f"lacks {len(missing)} of the 4 files")
    named, drop = ("root=", "leave root= out") if found_by == GIVEN else (f"${ENV_VAR}", f"unset {ENV_VAR}")
    complete = next((f for f in others if find_files(f)), None)
    elsewhere = f" A complete copy is in {complete}: {drop} to use it." if complete is not None else ""
    return DataError(
        f"Fashion-MNIST was not found in {folder} ({found_by}): the folder {state}, missing "
        f"{', '.join(f + '[.gz]' for f in missing)}{why}. Put the files there (directly or in "
        f"FashionMNIST/raw/), or correct {named}.{elsewhere}\n{HOW_TO_GET}")


def official(name: str, raw: bytes) -> bool | None:
    """Whether ``raw`` (an uncompressed file) is the official release's ``name``; None for a name
    the release does not have."""
    known = OFFICIAL_SHA256.get(name)
    return None if known is None else hashlib.sha256(raw).hexdigest() == known


def _read_bytes(path: Path) -> bytes:
    """The uncompressed content of an IDX file (gzipped or raw); DataError when it cannot be read."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read ({exc}). The file is damaged: delete it and get "
                        f"it again.\n{HOW_TO_GET}") from exc


def read_idx(path: Path, expected_count: int, labels: bool) -> torch.Tensor:
    """Read one IDX file (gzipped or raw) and check it; uint8 tensor of images or labels.

    A file that passes the checks but is not the official release's loads with a DataWarning.
    """
    raw = _read_bytes(path)

    def bad(why: str) -> DataError:
        return DataError(f"{path}: {why}. The file is not a Fashion-MNIST "
                         f"{'label' if labels else 'image'} file or is damaged: delete it and get "
                         f"it again.\n{HOW_TO_GET}")

    header = 8 if labels else 16
    if len(raw) < header:
        raise bad(f"only {len(raw)} bytes, shorter than the {header}-byte header")
    magic, count = struct.unpack(">II", raw[:8])
    want_magic = LABEL_MAGIC if labels else IMAGE_MAGIC
    if magic != want_magic:
        raise bad(f"magic number {magic:#010x}, expected {want_magic:#010x}")
    if count != expected_count:
        raise bad(f"holds {count:,} examples, expected {expected_count:,}")
    if not labels:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != (SIZE, SIZE):
            raise bad(f"images are {rows}x{cols}, expected {SIZE}x{SIZE}")
    expected_bytes = header + count * (1 if labels else SIZE * SIZE)
    if len(raw) != expected_bytes:
        raise bad(f"{len(raw):,} bytes, expected {expected_bytes:,} (truncated or padded)")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8)
    if labels and int(data.max()) >= len(CLASSES):
        raise bad(f"label {int(data.max())} out of range 0..{len(CLASSES) - 1}")
    name = path.name.removesuffix(".gz")
    if official(name, raw) is False:
        warnings.warn(f"{path} passes every check but is not the official Fashion-MNIST file (its SHA-256 "
                      f"differs from {OFFICIAL_SHA256[name][:16]}...): it is damaged (a changed byte, labels "
                      "shifted) or another dataset in the same format. If you meant Fashion-MNIST, delete it "
                      f"and get it again.\n{HOW_TO_GET}", DataWarning, stacklevel=2)
    return data.clone() if labels else data.view(count, SIZE, SIZE).clone()


@dataclass(frozen=True)
class Arrays:
    """The whole dataset as uint8 tensors on the CPU, and where it came from."""

    train_images: torch.Tensor  # (60000, 28, 28) uint8
    train_labels: torch.Tensor  # (60000,) uint8
    test_images: torch.Tensor   # (10000, 28, 28) uint8
    test_labels: torch.Tensor   # (10000,) uint8
    folder: Path
    found_by: str
    files: dict


@lru_cache(maxsize=4)
def _read_folder(folder: Path, found_by: str) -> Arrays:
    files = find_files(folder)
    assert files is not None
    out = {}
    for split, (images, labels, count) in SPLITS.items():
        out[f"{split}_images"] = read_idx(files[images], count, labels=False)
        out[f"{split}_labels"] = read_idx(files[labels], count, labels=True)
    return Arrays(folder=folder, found_by=found_by, files=files, **out)


def _download(folder: Path) -> None:
    """Let torchvision fetch the four files into ``folder/FashionMNIST/raw``."""
    import torchvision

    folder.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        torchvision.datasets.FashionMNIST(root=str(folder), train=train, download=True)


def load_arrays(root: str | os.PathLike | None = None, download: bool = True) -> Arrays:
    """Find, read and check Fashion-MNIST (see the module docstring for where it looks).

    Reading is cached per folder, so building several datasets in a notebook reads once.
    """
    places = search_path(root)
    for i, (found_by, folder) in enumerate(places):
        if find_files(folder) is not None:
            return _read_folder(folder.resolve(), found_by)
        if found_by in (GIVEN, FROM_ENV):      # the user's folder, and no other: download or say so
            # A folder that does not exist is a typo more often than a wish: create nothing.
            failure = _download_failure(folder) if download and folder.is_dir() else None
            if download and folder.is_dir() and failure is None:
                return _read_folder(folder.resolve(), "downloaded by torchvision")
            raise _incomplete(folder, found_by, [f for _, f in places[i + 1:]], f"; {failure}" if failure else "")
    searched = "\n".join(f"  * {folder}  ({why})" for why, folder in places)
    if not download:
        raise DataError(f"Fashion-MNIST was not found. Searched:\n{searched}\n{HOW_TO_GET}")
    target = places[0][1]
    failure = _download_failure(target)
    if failure is not None:
        raise DataError(f"Fashion-MNIST was not found and {failure}. Searched:\n{searched}\n{HOW_TO_GET}")
    return _read_folder(target.resolve(), "downloaded by torchvision")


def _download_failure(target: Path) -> str | None:
    """Let torchvision download the files into ``target``: None when they are there, else why not."""
    try:
        _download(target)
    except Exception as exc:  # torchvision raises URLError, RuntimeError, OSError...
        return f"downloading it into {target} failed ({type(exc).__name__}: {exc})"
    if find_files(target) is None:
        return f"torchvision reported success but the files are not in {target}"
    return None


def check(root: str | os.PathLike | None = None, download: bool = False) -> dict:
    """Where the data is, its counts, and whether it passed every check (for ``data --check``)."""
    arrays = load_arrays(root, download=download)
    return {
        "ok": True,
        "official": {name: official(name, _read_bytes(path)) for name, path in arrays.files.items()},
        "folder": str(arrays.folder),
        "found_by": arrays.found_by,
        "files": {name: str(path) for name, path in arrays.files.items()},
        "train": len(arrays.train_labels),
        "test": len(arrays.test_labels),
        "image_size": list(arrays.train_images.shape[1:]),
        "classes": len(CLASSES),
    }


# ----------------------------------------------------------------------------------------------
# Serving batches on the device
# ----------------------------------------------------------------------------------------------

def balanced_indices(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` examples of every class, in dataset order."""
    picks = [torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(CLASSES))]
    return torch.cat(picks).sort().values


def random_crop(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, padding: int) -> torch.Tensor:
    """Pad a batch (B, H, W) by ``padding`` zeros and cut each image at its own offset (dy, dx).

    One gather for the whole batch: per-image offsets become index tensors, no Python loop.
    """
    b, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, :]
    return padded[torch.arange(b, device=images.device)[:, None, None], rows, cols]


class Batches:
    """One pass over a split: an iterable of ``(images, labels)`` with a length.

    ``images`` is float32 (B, 1, R, R) and ``labels`` int64 (B,), both on the dataset's device.
    """

    def __init__(self, dataset: "FashionMNIST", images: torch.Tensor, labels: torch.Tensor,
                 order: torch.Tensor, batch_size: int, aug: dict | None = None, start: int = 0):
        self.dataset, self.images, self.labels = dataset, images, labels
        self.order, self.batch_size, self.aug, self.start = order, batch_size, aug, start

    def __len__(self) -> int:
        return max(0, -(-len(self.order) // self.batch_size) - self.start)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(self.start * self.batch_size, len(self.order), self.batch_size):
            idx = self.order[i:i + self.batch_size]
            images = self.images[idx]
            if self.aug is not None:
                pos = slice(i, i + len(idx))
                images = random_crop(images, self.aug["dy"][pos], self.aug["dx"][pos], self.dataset.crop_padding)
                images = torch.where(self.aug["flip"][pos, None, None], images.flip(-1), images)
            yield self.dataset.to_float(images), self.labels[idx]


class FashionMNIST:
    """Fashion-MNIST held on the training device and served as mini-batches.

    >>> data = FashionMNIST(batch_size=128, resize=96)            # doctest: +SKIP
    >>> for X, y in data.train_batches(epoch=0): ...              # X: (128, 1, 96, 96) float32

    Args:
        batch_size: examples per mini-batch.
        resize: side of the square images the model sees (bilinear, as ``transforms.Resize``).
        device: where the data lives and the batches are made; default CUDA, MPS or CPU.
        augment: random crop (zero padding ``crop_padding``) and horizontal flip of training batches.
        normalize: subtract the training-set mean and divide by its std (the book does not).
        subset: keep the first ``subset`` training images of each class (balanced quick runs).
        test_subset: the same for the test set.
        seed: shuffling and augmentation are a function of ``(seed, epoch)`` only, so a run can
            be repeated, resumed mid-epoch, and sharded across processes.
        root: the folder holding the IDX files (used instead of the default places; an error
            names the files it lacks).
        download: allow torchvision to download when the files are nowhere to be found.
    """

    classes = CLASSES

    def __init__(self, batch_size: int = 256, resize: int = 28, device: str | torch.device | None = None,
                 augment: bool = False, normalize: bool = False, subset: int | None = None,
                 test_subset: int | None = None, seed: int = 0, crop_padding: int = 2,
                 root: str | os.PathLike | None = None, download: bool = True):
        if resize < 1:
            raise ValueError(f"resize must be a positive image side, got {resize}")
        check_count("batch_size", batch_size, "Try the book's 128 or 256.", error=ValueError)
        for name, value in (("subset", subset), ("test_subset", test_subset)):
            if value is not None:
                check_count(name, value, "It is the number of images kept per class (None keeps all).",
                            error=ValueError)
        self.batch_size, self.resize, self.augment, self.normalize = batch_size, resize, augment, normalize
        self.seed, self.crop_padding = seed, crop_padding
        self.device = default_device(device)
        arrays = load_arrays(root, download=download)
        self.source, self.found_by = arrays.folder, arrays.found_by     # shown by repr
        train_x, train_y = arrays.train_images, arrays.train_labels
        test_x, test_y = arrays.test_images, arrays.test_labels
        if subset is not None:
            keep = balanced_indices(train_y, subset)
            train_x, train_y = train_x[keep], train_y[keep]
        if test_subset is not None:
            keep = balanced_indices(test_y, test_subset)
            test_x, test_y = test_x[keep], test_y[keep]
        # One copy to the device, as uint8 (4x smaller than float); labels as int64 for the loss.
        self.train_images = train_x.to(self.device)
        self.train_labels = train_y.long().to(self.device)
        self.test_images = test_x.to(self.device)
        self.test_labels = test_y.long().to(self.device)

    def __repr__(self) -> str:
        return (f"FashionMNIST(train={len(self.train_labels):,}, test={len(self.test_labels):,}, "
                f"batch_size={self.batch_size}, resize={self.resize}, augment={self.augment}, "
                f"normalize={self.normalize}, device={self.device}, source={self.source} ({self.found_by}))")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """The shape of one batch of images, (batch, 1, resize, resize)."""
        return (self.batch_size, 1, self.resize, self.resize)

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W) -> float32 (B, 1, R, R) in 0..1 (or normalised), resized bilinearly."""
        x = images.unsqueeze(1).float().div_(255)
        if self.resize != x.shape[-1]:
            # antialias only changes a downsampling, where it matches PIL (transforms.Resize).
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear",
                              align_corners=False, antialias=self.resize < x.shape[-1])
        if self.normalize:
            x = (x - MEAN) / STD
        return x

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def train_batches(self, epoch: int = 0, start: int = 0, rank: int = 0, world_size: int = 1,
                      batch_size: int | None = None) -> Batches:
        """The shuffled training batches of ``epoch``, from batch ``start`` on.

        With ``world_size > 1`` every process draws the same permutation and keeps its own
        equal share (``rank::world_size``), cut into batches of ``batch_size // world_size``.
        """
        batch_size = batch_size or self.batch_size
        n = len(self.train_labels)
        gen = self._epoch_generator(epoch)
        order = torch.randperm(n, generator=gen)
        aug = None
        if self.augment:
            p = self.crop_padding
            aug = {"dy": torch.randint(0, 2 * p + 1, (n,), generator=gen),
                   "dx": torch.randint(0, 2 * p + 1, (n,), generator=gen),
                   "flip": torch.rand(n, generator=gen) < 0.5}
        if world_size > 1:
            share = n // world_size
            order = order[rank::world_size][:share]
            if aug is not None:
                aug = {k: v[rank::world_size][:share] for k, v in aug.items()}
            batch_size = max(1, batch_size // world_size)
        # One transfer per epoch; the per-batch slicing then happens on the device.
        order = order.to(self.device)
        if aug is not None:
            aug = {k: v.to(self.device) for k, v in aug.items()}
        return Batches(self, self.train_images, self.train_labels, order, batch_size, aug, start)

    def test_batches(self, batch_size: int | None = None, limit: int | None = None) -> Batches:
        """The test set in its fixed order, without augmentation; ``limit`` caps the examples."""
        n = len(self.test_labels) if limit is None else min(limit, len(self.test_labels))
        order = torch.arange(n, device=self.device)
        return Batches(self, self.test_images, self.test_labels, order, batch_size or self.batch_size)

    def sample(self, n: int = 8, split: str = "test", per_class: bool = False):
        """The first ``n`` examples (or, with ``per_class``, the first of each class) as a batch.

        Fixed, not random, so that pictures and widgets show the same images on every run.
        """
        images = self.test_images if split == "test" else self.train_images
        labels = self.test_labels if split == "test" else self.train_labels
        if per_class:  # the first image of class 0, of class 1, ... in class order
            labels_cpu = labels.cpu()
            idx = torch.stack([torch.nonzero(labels_cpu == c)[0, 0] for c in range(len(CLASSES))])
        else:
            idx = torch.arange(n)
        idx = idx.to(self.device)
        return self.to_float(images[idx]), labels[idx]

    @staticmethod
    def text_labels(labels: Sequence[int] | torch.Tensor) -> list[str]:
        """Class names for integer labels."""
        return [CLASSES[int(i)] for i in labels]


def show_images(images: torch.Tensor, labels: Sequence[int] | torch.Tensor | None = None,
                preds: Sequence[int] | torch.Tensor | None = None, ncols: int = 8, scale: float = 1.4):
    """A grid of grayscale images titled with their class (and the prediction when given).

    A wrong prediction is titled ``true -> predicted`` in red. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    images = images.detach().float().cpu()
    if images.dim() == 4:
        images = images[:, 0]
    images = images.numpy()
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray")
        if labels is None:
            continue
        true = CLASSES[int(labels[i])]
        if preds is None:
            ax.set_title(true, fontsize=9)
        else:
            pred = CLASSES[int(preds[i])]
            wrong = pred != true
            ax.set_title(f"{true} -> {pred}" if wrong else true, fontsize=9, color="red" if wrong else "black")
    fig.tight_layout()
    return fig


def torchvision_root(cache: str | os.PathLike | None = None, root: str | os.PathLike | None = None) -> Path:
    """A folder that ``torchvision.datasets.FashionMNIST(root=...)`` accepts without downloading.

    torchvision wants the four files uncompressed under ``FashionMNIST/raw/``. The book's loader
    and the benchmarks use it; we unpack the files we found once into ``cache`` (default
    ``data/torchvision``) so that the comparison runs offline on the very same data. A folder
    that cannot be written is a one-line DataError naming it and the way out (another ``cache``).
    """
    arrays = load_arrays(root, download=False)
    target = Path(cache) if cache is not None else default_data_dir() / "torchvision"
    raw = target / "FashionMNIST" / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for name, path in arrays.files.items():
            out = raw / name
            if out.is_file() and out.stat().st_size > 0:
                continue
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as src:
                tmp = out.with_suffix(".part")
                tmp.write_bytes(src.read())
                tmp.replace(out)
    except OSError as exc:
        raise DataError(f"cannot unpack Fashion-MNIST for torchvision into {raw}: {exc.strerror or exc}. "
                        "torchvision's loader needs the four files uncompressed in a folder you can write: "
                        "pass cache=<a writable folder> (on the command line: --cache DIR), "
                        f"or make {target} writable.") from None
    return target
