"""MNIST: the IDX files (or an ``mnist.npz``), and scikit-learn's handwritten digits as the offline corpus."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import Source, ZooDataModule, missing_data_message, split_indices
from datamodules.batches import ImageBatch
from zoo.download import DATASETS, MNIST_SHA256_UNCOMPRESSED, DownloadError, download_file, sha256_of_gzip_payload
from zoo.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format), gzipped or not: magic 0x0000TTDD, DD big-endian int32 dims, data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DatasetFormatError(f"cannot read IDX file {path}: {err}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetFormatError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: IDX header truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetFormatError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes of data) but the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def load_mnist_idx(folder: Path) -> dict[str, np.ndarray] | None:
    """The four MNIST arrays from IDX files in ``folder`` (.gz or raw), or None if any file is missing."""
    paths = {key: _find_idx(folder, stem) for key, stem in MNIST_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {key: read_idx(p) for key, p in paths.items()}  # type: ignore[arg-type]
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetFormatError(
                f"MNIST {split} files in {folder} disagree: images {images.shape}, labels {labels.shape}"
            )
    return arrays


def load_mnist_npz(path: Path) -> dict[str, np.ndarray]:
    """The four MNIST arrays from a Keras-style ``mnist.npz`` (x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as npz:
            return {
                "train_images": npz["x_train"], "train_labels": npz["y_train"],
                "test_images": npz["x_test"], "test_labels": npz["y_test"],
            }
    except (OSError, ValueError, KeyError) as err:
        raise DatasetFormatError(f"{path} is not a Keras-style mnist.npz (x_train, y_train, x_test, y_test): {err}") from err


def embedded_digits() -> dict[str, np.ndarray]:
    """scikit-learn's 1,797 real handwritten digits (UCI, 8x8, 0..16) resized to MNIST's 28x28 uint8 layout.

    MNIST centres each digit in a 20x20 box inside the 28x28 frame, so the 8x8 images are upsampled
    (bilinear) to 20x20 and padded by 4 pixels on each side.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    x = torch.nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = torch.nn.functional.pad(x, (4, 4, 4, 4))  # (N, 1, 28, 28)
    images = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return {"images": images, "labels": digits.target.astype(np.int64)}


class ImageDataset(Dataset):
    """uint8 images (N, H, W) and labels, served as float images in [0, 1] of shape (1, H, W)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i].float().div(255.0).unsqueeze(0), "label": self.labels[i]}


class MNISTDataModule(ZooDataModule):
    """MNIST (LeCun et al. 1998) from ``<root>/mnist``; ``source: embedded`` uses scikit-learn's digits instead.

    Splits: the official 10,000 test images are the test set; ``val_size`` images of the official training set,
    chosen by a seeded permutation, are the validation set. Embedded: ``val_size``/``test_size`` are capped to
    10% of the 1,797 digits each (seeded).
    """

    def __init__(
        self,
        root: str = "data",
        source: Source = "real",
        download: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        val_size: int = 5000,
        seed: int = 1234,
    ) -> None:
        super().__init__(source=source, root=root, download=download, batch_size=batch_size, num_workers=num_workers, seed=seed)
        self.val_size = val_size
        self.save_hyperparameters()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 28, 28)

    @property
    def folder(self) -> Path:
        return Path(self.root) / "mnist"

    def prepare_data(self) -> None:
        if self.source == "embedded":
            return
        if load_mnist_idx(self.folder) is not None or (self.folder / "mnist.npz").is_file():
            return
        if not self.download:
            raise DatasetNotFoundError(
                missing_data_message("MNIST (four IDX .gz files or mnist.npz)", self.folder, "MNISTDataModule",
                                     "https://ossci-datasets.s3.amazonaws.com/mnist/")
            )
        self._download()

    def _download(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        by_name: dict[str, list[str]] = {}
        for res in DATASETS["MNIST"]:
            by_name.setdefault(res.filename, []).append(res.url)
        for name, urls in by_name.items():
            dest = self.folder / name
            errors = []
            for url in urls:  # mirrors, in order
                try:
                    download_file(url, dest)
                    break
                except DownloadError as err:
                    errors.append(str(err))
            else:
                raise DatasetNotFoundError(
                    f"could not download {name} from any mirror: {'; '.join(errors)}. Run on the embedded "
                    "offline corpus (scikit-learn's digits) instead with --data.source embedded (MNISTDataModule)."
                )
            # Mirrors serve different gzip wrappers of the same bytes: pin the decompressed payload.
            actual = sha256_of_gzip_payload(dest)
            expected = MNIST_SHA256_UNCOMPRESSED[name.removesuffix(".gz")]
            if actual != expected:
                dest.unlink()
                raise DownloadError(f"{name}: decompressed SHA-256 {actual} != expected {expected}; file removed")

    def _real_arrays(self) -> dict[str, np.ndarray]:
        arrays = load_mnist_idx(self.folder)
        if arrays is None and (self.folder / "mnist.npz").is_file():
            arrays = load_mnist_npz(self.folder / "mnist.npz")
        if arrays is None:
            raise DatasetNotFoundError(
                missing_data_message("MNIST (four IDX .gz files or mnist.npz)", self.folder, "MNISTDataModule",
                                     "https://ossci-datasets.s3.amazonaws.com/mnist/")
            )
        return arrays

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.source == "embedded":
            data = embedded_digits()
            n = len(data["images"])
            cap = n // 10
            parts = split_indices(n, min(self.val_size, cap), cap, self.seed)
            for split, idx in parts.items():
                self.datasets[split] = ImageDataset(data["images"][idx], data["labels"][idx])
            return
        arrays = self._real_arrays()
        parts = split_indices(len(arrays["train_images"]), self.val_size, 0, self.seed)
        self.datasets["train"] = ImageDataset(arrays["train_images"][parts["train"]], arrays["train_labels"][parts["train"]])
        self.datasets["val"] = ImageDataset(arrays["train_images"][parts["val"]], arrays["train_labels"][parts["val"]])
        self.datasets["test"] = ImageDataset(arrays["test_images"], arrays["test_labels"])

    def collate(self, items: list[dict[str, Any]]) -> ImageBatch:
        return ImageBatch(images=torch.stack([it["image"] for it in items]), labels=torch.stack([it["label"] for it in items]))
