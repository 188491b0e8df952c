"""Shared fixtures: tiny real-format corpora written by the tests themselves."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("WANDB_MODE", "offline")  # never reach for the network from a test
os.environ.setdefault("WANDB_SILENT", "true")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs the suite in several processes (pyproject's addopts): each gets its share of the cores for
    # torch's threads, else N workers of all-core thread pools oversubscribe the machine
    import torch

    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, _cores // _workers))

TEXTS = [
    "Printing, in the only sense with which we are at present concerned.",
    "The earliest book printed with movable types, the Gutenberg Bible.",
    "Dr. Smith paid $3.50 for 2 books in 1865.",
    "And it is worth mention in passing that, as an example of fine typography.",
    "It was printed in a fine Gothic type.",
    "Short one.",
    "The forms of printed letters should be beautiful, and their arrangement on the page reasonable.",
    "Which has never been surpassed.",
    "Now, as all books not primarily intended as picture books consist principally of types.",
    "In fifteen twenty the printers of the Low Countries were producing books.",
    "Cases are known in which the whole print is a single flat slab.",
    "Roman type was first used in Italy.",
]


def tone(seconds: float, sample_rate: int, freq: float = 220.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a few harmonics with an envelope plus a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 5))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t) ** 2) + 0.02 * rng.standard_normal(len(t))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def make_ljspeech_tree(root: Path, n: int = 12, sample_rate: int = 22050) -> Path:
    """``root/LJSpeech-1.1`` with ``metadata.csv`` (id|raw|normalized) and 16-bit wavs, like the real corpus."""
    folder = root / "LJSpeech-1.1"
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        utt_id = f"LJ001-{i + 1:04d}"
        text = TEXTS[i % len(TEXTS)]
        sf.write(folder / "wavs" / f"{utt_id}.wav", tone(0.4 + 0.05 * i, sample_rate, 150 + 10 * i, i), sample_rate,
                 subtype="PCM_16")
        lines.append(f"{utt_id}|{text}|{text}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def make_arctic_tree(root: Path, speakers=("bdl", "slt"), n: int = 12, sample_rate: int = 16000,
                     ids: list[str] | None = None) -> Path:
    """``root/cmu_arctic/cmu_us_<spk>_arctic/{wav,etc/txt.done.data}`` like the real CMU ARCTIC, 16 kHz (prompt ids
    ``arctic_a0001``.. or ``ids``)."""
    base = root / "cmu_arctic"
    for s, spk in enumerate(speakers):
        folder = base / f"cmu_us_{spk}_arctic"
        (folder / "wav").mkdir(parents=True, exist_ok=True)
        (folder / "etc").mkdir(parents=True, exist_ok=True)
        lines = []
        for i, utt_id in enumerate(ids or [f"arctic_a{i + 1:04d}" for i in range(n)]):
            sf.write(folder / "wav" / f"{utt_id}.wav", tone(0.3 + 0.04 * i + 0.1 * s, sample_rate, 120 + 80 * s, i),
                     sample_rate, subtype="PCM_16")
            lines.append(f'( {utt_id} "{TEXTS[i % len(TEXTS)]}" )')
        (folder / "etc" / "txt.done.data").write_text("\n".join(lines) + "\n")
    return base


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file written byte by byte: magic (0, 0, 0x08 = ubyte, ndim), big-endian int32 dims, raw bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload = header + array.tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_mnist_tree(root: Path, n_train: int = 40, n_test: int = 20) -> Path:
    folder = root / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return folder


@pytest.fixture
def lj_root(tmp_path: Path) -> Path:
    make_ljspeech_tree(tmp_path)
    return tmp_path


@pytest.fixture
def arctic_root(tmp_path: Path) -> Path:
    make_arctic_tree(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def embedded_data(tmp_path_factory) -> Path:
    """One root for the embedded corpora (eSpeak LJSpeech and ARCTIC layouts, the digits) at their default sizes,
    shared by every test module that fits configs on them: each corpus and its feature cache is built once per
    session, not once per module."""
    return tmp_path_factory.mktemp("embedded_data")
