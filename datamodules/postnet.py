"""Paired (blurry, ground-truth) mel spectrograms for spectrogram post-nets (pix2pix), from two sources:

1. **files** (``pairs_dir``): an upstream model's teacher-forced predictions, frame-aligned with the truth, listed
   in ``<pairs_dir>/index.tsv`` (format below);
2. **built-in degradation** (default): ``degrade_mel`` applied to the real mel spectrograms of a corpus
   (LJSpeech or one CMU ARCTIC speaker, real or embedded), so the experiment runs with no upstream model.

Index format of ``pairs_dir`` (UTF-8, tab-separated, one header line, ``#`` lines are comments)::

    id  input   target
    LJ001-0001  inputs/LJ001-0001.npy   targets/LJ001-0001.npy

``input``/``target`` are paths relative to ``pairs_dir`` of ``.npy`` float arrays (frames, n_mels), time-major
and normalised to [0, 1] exactly as the zoo's DataModules give mel spectrograms (same ``AudioConfig``). Input
and target of a pair must have the same shape. The split is the zoo's seeded permutation of the sorted ids, unless
the index has a fourth column ``split`` (``train``, ``val`` or ``test`` on every row) that fixes it, as an upstream
dump of a corpus with a standard split writes it (``python -m zoo reproduce postnet --upstream``).

Training items are random ``crop_bins × crop_frames`` crops (mel bins × frames) taken inside each utterance's
valid frames, preferring windows that are not mostly silence (``choose_crop_start``); validation, test, predict
and media items are whole utterances.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from datamodules.base import Source, ZooDataModule, split_indices
from datamodules.batches import pad_sequences
from datamodules.cmu_arctic import CMUArcticDataModule
from datamodules.ljspeech import LJSpeechDataModule
from datamodules.speech import split_sizes
from zoo.audio import AudioConfig
from zoo.errors import DatasetFormatError, DatasetNotFoundError

INDEX_FILE = "index.tsv"
INDEX_HEADER = ("id", "input", "target")


# --- the built-in degradation ---------------------------------------------------------------------------------


def _gaussian_blur_1d(x: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Gaussian blur of a 2-D tensor along ``dim``, kernel radius ceil(3σ), edges replicated (no dark border)."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)  # (1, 1, K)
    rows = x.movedim(dim, -1)  # (N, L): the blur runs along the last dim
    y = F.conv1d(F.pad(rows.reshape(-1, 1, rows.shape[-1]), (radius, radius), mode="replicate"), kernel)  # (N, 1, L)
    return y.reshape(rows.shape).movedim(-1, dim)


def degrade_mel(
    mel: torch.Tensor,
    sigma_freq: float = 1.5,
    sigma_time: float = 1.5,
    rank: int = 12,
    jitter: float = 0.25,
    seed: int = 0,
) -> torch.Tensor:
    """A stand-in for a maximum-likelihood model's over-smoothed output: (T, n_mels) in [0, 1] -> (T, n_mels).

    1. Gaussian blur along frequency (σ = ``sigma_freq`` mel bins) and along time (σ = ``sigma_time`` frames),
       each σ scaled by a factor drawn uniformly from [1 − jitter, 1 + jitter] by a generator seeded with
       ``seed`` (so pairs differ a little in blurriness, and the same seed gives the same output);
    2. low-rank smoothing: the rank-``rank`` truncated SVD of the (T, n_mels) matrix, which keeps the broad
       spectral envelopes and drops the fine harmonic/temporal detail (skipped when ``rank >= min(T, n_mels)``);
    3. clamp into [min, max] of the original, so the degraded input never leaves the truth's range.

    Pure: ``mel`` is not modified; only the seed decides the randomness.
    """
    if mel.dim() != 2:
        raise ValueError(f"mel must be (frames, n_mels), but got shape {tuple(mel.shape)}")
    if sigma_freq < 0 or sigma_time < 0:
        raise ValueError(f"sigma_freq and sigma_time must be >= 0, but got {sigma_freq} and {sigma_time}")
    if rank < 1:
        raise ValueError(f"rank must be >= 1, but got {rank}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), but got {jitter}")
    rng = np.random.default_rng(seed)
    scale_f, scale_t = rng.uniform(1.0 - jitter, 1.0 + jitter, size=2)
    x = mel.to(torch.float64)
    x = _gaussian_blur_1d(x, sigma_freq * float(scale_f), dim=1)  # along mel bins
    x = _gaussian_blur_1d(x, sigma_time * float(scale_t), dim=0)  # along frames
    if rank < min(x.shape):
        u, s, vh = torch.linalg.svd(x, full_matrices=False)  # (T, K), (K,), (K, F)
        x = (u[:, :rank] * s[:rank]) @ vh[:rank]  # (T, F) best rank-k approximation
    return x.clamp(float(mel.min()), float(mel.max())).to(mel.dtype)


def utterance_seed(seed: int, utt_id: str) -> int:
    """A per-utterance seed that depends only on the DataModule seed and the id (stable across runs and ranks)."""
    return (seed * 1_000_003 + zlib.crc32(utt_id.encode())) % 2**63


# --- crop selection ------------------------------------------------------------------------------------------


def active_frames(mel: torch.Tensor, threshold: float) -> torch.Tensor:
    """(T, n_mels) in [0, 1] -> (T,) bool: frames whose mean normalised log-mel energy is at least ``threshold``.

    In the zoo's normalisation 0 is the ``min_db`` floor (digital silence and padding) and speech frames average
    about 0.25–0.45 over the 80 bins, so the default 0.15 separates pauses and padding from speech.
    """
    return mel.mean(dim=1) >= threshold


def choose_crop_start(active: torch.Tensor, crop: int, min_active_fraction: float,
                      generator: torch.Generator | None = None) -> int:
    """Start frame of a ``crop``-frame window inside a valid region of ``len(active)`` frames.

    Candidates are the starts whose window holds at least ``min_active_fraction`` active frames; one is drawn
    uniformly. When no window qualifies (an utterance that is mostly silence), the window with the most active
    frames is taken (the first such). Windows never reach past the valid frames, so they never cover padding.
    ``len(active) < crop`` gives 0 (the caller pads the short utterance).
    """
    n = active.shape[0]
    if n <= crop:
        return 0
    counts = torch.cat([active.new_zeros(1, dtype=torch.long), active.long().cumsum(0)])  # (T + 1,)
    in_window = counts[crop:] - counts[:-crop]  # (T - crop + 1,) active frames of each window
    ok = torch.nonzero(in_window >= min_active_fraction * crop).flatten()
    if ok.numel() == 0:
        return int(in_window.argmax())
    return int(ok[torch.randint(ok.numel(), (1,), generator=generator)])


def random_crop_pair(
    mel_input: torch.Tensor,
    mel_target: torch.Tensor,
    crop_frames: int,
    crop_bins: int,
    silence_threshold: float,
    min_active_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random (crop_frames, crop_bins) window of an aligned pair of (T, n_mels) spectrograms.

    Time: ``choose_crop_start`` on the target's active frames; utterances shorter than the crop are padded at the
    end with 0 (the silence floor), like batch padding. Frequency: a uniform start in [0, n_mels − crop_bins].
    """
    if mel_input.shape != mel_target.shape:
        raise ValueError(f"input and target must be aligned, but got {tuple(mel_input.shape)} and {tuple(mel_target.shape)}")
    t, n_mels = mel_target.shape
    if crop_bins > n_mels:
        raise ValueError(f"crop_bins = {crop_bins} exceeds the {n_mels} mel bins")
    start = choose_crop_start(active_frames(mel_target, silence_threshold), crop_frames, min_active_fraction, generator)
    f0 = int(torch.randint(n_mels - crop_bins + 1, (1,), generator=generator))
    pad = max(0, crop_frames - t)

    def cut(m: torch.Tensor) -> torch.Tensor:
        return F.pad(m, (0, 0, 0, pad))[start : start + crop_frames, f0 : f0 + crop_bins]

    return cut(mel_input), cut(mel_target)


# --- datasets and batches ------------------------------------------------------------------------------------


@dataclass
class PairedMelBatch:
    """Aligned (blurry input, ground truth) mel spectrograms, time-major, in [0, 1], padded with 0."""

    ids: list[str]
    mel_input: torch.Tensor  # (B, T, n_mels) or (B, crop_frames, crop_bins) for training crops
    mel_target: torch.Tensor  # same shape as mel_input
    mel_lengths: torch.Tensor  # (B,) valid frames


class DegradedPairs(Dataset):
    """Whole utterances of a speech dataset (items with ``id`` and ``mel``) paired with ``degrade_mel`` of them."""

    def __init__(self, utterances: Dataset, seed: int, degradation: dict[str, Any]) -> None:
        self.utterances, self.seed, self.degradation = utterances, seed, degradation

    def __len__(self) -> int:
        return len(self.utterances)  # type: ignore[arg-type]

    def lengths(self) -> list[int]:
        return self.utterances.lengths()  # type: ignore[attr-defined]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.utterances[i]
        target = item["mel"]  # (T, n_mels)
        blurry = degrade_mel(target, seed=utterance_seed(self.seed, item["id"]), **self.degradation)
        return {"id": item["id"], "mel_input": blurry, "mel_target": target}


class FilePairs(Dataset):
    """Pairs listed in a ``pairs_dir`` index (see the module docstring)."""

    def __init__(self, folder: Path, entries: Sequence[tuple[str, str, str]], n_mels: int) -> None:
        self.folder, self.entries, self.n_mels = folder, list(entries), n_mels
        self._lengths: list[int] = []
        for utt_id, inp, tgt in self.entries:
            shapes = [np.load(folder / p, mmap_mode="r").shape for p in (inp, tgt)]
            if shapes[0] != shapes[1] or len(shapes[0]) != 2 or shapes[0][1] != n_mels:
                raise DatasetFormatError(
                    f"{folder / INDEX_FILE}: pair {utt_id!r} must be two aligned (frames, {n_mels}) arrays, "
                    f"but got input {shapes[0]} and target {shapes[1]}"
                )
            self._lengths.append(shapes[0][0])

    def __len__(self) -> int:
        return len(self.entries)

    def lengths(self) -> list[int]:
        return self._lengths

    def __getitem__(self, i: int) -> dict[str, Any]:
        utt_id, inp, tgt = self.entries[i]
        def load(path: str) -> torch.Tensor:
            return torch.from_numpy(np.load(self.folder / path).astype(np.float32))  # (T, n_mels)

        return {"id": utt_id, "mel_input": load(inp), "mel_target": load(tgt)}


def read_pairs_index(folder: Path) -> list[tuple[str, ...]]:
    """Parse ``<folder>/index.tsv`` into (id, input path, target path[, split]) rows; every file must exist."""
    index = folder / INDEX_FILE
    if not index.is_file():
        raise DatasetNotFoundError(f"{index} is missing: pairs_dir must hold an {INDEX_FILE} (see datamodules/postnet.py)")
    rows, header_seen = [], False
    for lineno, line in enumerate(index.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = tuple(f.strip() for f in line.split("\t"))
        if not header_seen:
            if fields not in (INDEX_HEADER, (*INDEX_HEADER, "split")):
                header = "\t".join(INDEX_HEADER)
                raise DatasetFormatError(f"{index}:{lineno}: expected the header {header!r} (optionally with a "
                                         f"fourth column 'split'), got {line!r}")
            width = len(fields)
            header_seen = True
            continue
        if len(fields) != width or not all(fields):
            expected = "id<TAB>input<TAB>target" + ("<TAB>split" if width == 4 else "")
            raise DatasetFormatError(f"{index}:{lineno}: expected {expected!r}, got {line!r}")
        if width == 4 and fields[3] not in ("train", "val", "test"):
            raise DatasetFormatError(f"{index}:{lineno}: split must be train, val or test, got {fields[3]!r}")
        for p in fields[1:3]:
            if not (folder / p).is_file():
                raise DatasetFormatError(f"{index}:{lineno}: {folder / p} does not exist")
        rows.append(fields)
    if not rows:
        raise DatasetFormatError(f"{index} lists no pair")
    return rows  # type: ignore[return-value]


def write_pairs_index(folder: Path, rows: Sequence[tuple[str, ...]], name: str = INDEX_FILE) -> Path:
    """Write ``<folder>/index.tsv`` (or ``name``) for (id, input path, target path[, split]) rows, paths relative to
    ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    widths = {len(r) for r in rows}
    if not widths <= {3} and not widths <= {4}:
        raise ValueError(f"every row needs 3 fields (id, input, target) or every row 4 (with split), got {sorted(widths)}")
    header = INDEX_HEADER if widths <= {3} else (*INDEX_HEADER, "split")
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / name


class RandomCrops(Dataset):
    """``crops_per_utterance`` random training crops of every pair, new ones every epoch.

    The crop of item ``i`` in epoch ``e`` comes from a generator seeded with ``(seed, e, i)``, not from the global
    one: the loader fetches a batch ahead of training, so crops drawn from the global stream would depend on when
    the batch was fetched, and a run resumed mid-epoch would crop differently from an uninterrupted one.
    The epoch comes with the index (``datamodules.sampling.EpochIndex``).
    """

    def __init__(self, pairs: Dataset, crops_per_utterance: int, crop_frames: int, crop_bins: int,
                 silence_threshold: float, min_active_fraction: float, seed: int = 0) -> None:
        self.pairs, self.repeat, self.seed = pairs, crops_per_utterance, seed
        self.crop = {"crop_frames": crop_frames, "crop_bins": crop_bins, "silence_threshold": silence_threshold,
                         "min_active_fraction": min_active_fraction}

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.pairs[i % len(self.pairs)]  # type: ignore[arg-type]
        epoch = int(getattr(i, "epoch", 0))  # the sampler's EpochIndex
        generator = torch.Generator().manual_seed(((self.seed * 1_000_003 + epoch) * 1_000_033 + i) % 2**63)
        inp, tgt = random_crop_pair(item["mel_input"], item["mel_target"], **self.crop, generator=generator)
        return {"id": item["id"], "mel_input": inp, "mel_target": tgt}


def collate_pairs(items: Sequence[dict[str, Any]]) -> PairedMelBatch:
    inp, lengths = pad_sequences([it["mel_input"] for it in items])
    tgt, _ = pad_sequences([it["mel_target"] for it in items])
    return PairedMelBatch(ids=[it["id"] for it in items], mel_input=inp, mel_target=tgt, mel_lengths=lengths)


# --- the DataModule ------------------------------------------------------------------------------------------


class PairedMelDataModule(ZooDataModule):
    """(blurry, ground-truth) mel spectrogram pairs for post-nets: training crops, whole utterances elsewhere.

    Without ``pairs_dir`` the pairs are ``degrade_mel`` (``sigma_freq``, ``sigma_time``, ``rank``, ``jitter``,
    seeded per utterance) of the mel spectrograms of ``corpus`` (``ljspeech``, or ``cmu_arctic`` speaker
    ``speaker``), read through that corpus's DataModule with ``source``/``root``/``download``; with
    ``pairs_dir`` they are read from its ``index.tsv`` (module docstring) and the corpus is not used.

    Training crops are ``crop_bins × crop_frames`` (mel bins × frames), ``crops_per_utterance`` per utterance and
    epoch; a crop's window holds at least ``min_active_fraction`` frames whose mean energy is at least
    ``silence_threshold`` whenever the utterance has such a window (``choose_crop_start``).

    ``mel_range()`` gives the (min, max) of the training targets (and file inputs), from which the model
    derives its [−1, 1] scale and stores it in its checkpoint.
    """

    def __init__(
        self,
        root: str = "data",
        source: Source = "real",
        download: bool = False,
        corpus: Literal["ljspeech", "cmu_arctic"] = "ljspeech",
        speaker: str = "slt",
        pairs_dir: str | None = None,
        audio: AudioConfig = AudioConfig(),
        crop_frames: int = 64,
        crop_bins: int = 64,
        crops_per_utterance: int = 1,
        silence_threshold: float = 0.15,
        min_active_fraction: float = 0.5,
        sigma_freq: float = 1.5,
        sigma_time: float = 1.5,
        rank: int = 12,
        jitter: float = 0.25,
        batch_size: int = 16,
        num_workers: int = 0,
        val_size: int = 100,
        test_size: int = 100,
        max_frames: int | None = None,
        embedded_size: int | None = None,
        seed: int = 1234,
        progress: bool = True,
    ) -> None:
        super().__init__(source=source, root=root, download=download, batch_size=batch_size,
                         num_workers=num_workers, seed=seed)
        if corpus not in ("ljspeech", "cmu_arctic"):
            raise ValueError(f"corpus must be 'ljspeech' or 'cmu_arctic', but got {corpus!r}")
        if not isinstance(audio, AudioConfig):
            raise ValueError(f"audio must be an AudioConfig, but got {type(audio).__name__}")
        if crop_frames < 1 or crop_bins < 1:
            raise ValueError(f"crop_frames and crop_bins must be >= 1, but got {crop_frames} and {crop_bins}")
        if crop_bins > audio.n_mels:
            raise ValueError(f"crop_bins = {crop_bins} exceeds audio.n_mels = {audio.n_mels}")
        if crops_per_utterance < 1:
            raise ValueError(f"crops_per_utterance must be >= 1, but got {crops_per_utterance}")
        if not 0.0 <= min_active_fraction <= 1.0:
            raise ValueError(f"min_active_fraction must be in [0, 1], but got {min_active_fraction}")
        degrade_mel(torch.zeros(4, 4), sigma_freq, sigma_time, rank, jitter)  # validates the degradation
        self.save_hyperparameters()
        self.audio = audio
        self.corpus, self.pairs_dir = corpus, Path(pairs_dir) if pairs_dir is not None else None
        self.crop_frames, self.crop_bins, self.crops_per_utterance = crop_frames, crop_bins, crops_per_utterance
        self.silence_threshold, self.min_active_fraction = silence_threshold, min_active_fraction
        self.degradation = {"sigma_freq": sigma_freq, "sigma_time": sigma_time, "rank": rank, "jitter": jitter}
        self.val_size, self.test_size = val_size, test_size
        self.pairs: dict[str, Dataset] = {}
        self._range: tuple[float, float] | None = None
        self.inner: LJSpeechDataModule | CMUArcticDataModule | None = None
        if self.pairs_dir is None:
            common: dict[str, Any] = {"root": root, "source": source, "download": download, "audio": audio,
                                          "batch_size": batch_size, "val_size": val_size, "test_size": test_size,
                                          "max_frames": max_frames, "seed": seed, "progress": progress}
            if embedded_size is not None:
                common["embedded_size"] = embedded_size
            if corpus == "ljspeech":
                self.inner = LJSpeechDataModule(**common)
            else:
                self.inner = CMUArcticDataModule(mode="single", target_speaker=speaker, **common)

    @property
    def crop_size(self) -> tuple[int, int]:
        """(mel bins, frames) of a training crop: the generator's depth is checked against it."""
        return self.crop_bins, self.crop_frames

    def prepare_data(self) -> None:
        if self.inner is not None:
            self.inner.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.pairs:
            return
        if self.inner is not None:
            self.inner.setup(stage)
            for split, ds in self.inner.datasets.items():
                self.pairs[split] = DegradedPairs(ds, self.seed, self.degradation)
        else:
            assert self.pairs_dir is not None
            rows = sorted(read_pairs_index(self.pairs_dir))
            if rows and len(rows[0]) == 4:  # the index fixes the split
                for split in ("train", "val", "test"):
                    self.pairs[split] = FilePairs(self.pairs_dir, [r[:3] for r in rows if r[3] == split], self.audio.n_mels)
            else:
                val, test = split_sizes(len(rows), self.val_size, self.test_size)
                for split, idx in split_indices(len(rows), val, test, self.seed).items():
                    self.pairs[split] = FilePairs(self.pairs_dir, [rows[i] for i in idx], self.audio.n_mels)
        if len(self.pairs["train"]) == 0:  # type: ignore[arg-type]
            raise DatasetFormatError("the training split holds no pair")
        self.datasets = {
            "train": RandomCrops(self.pairs["train"], self.crops_per_utterance, self.crop_frames, self.crop_bins,
                                 self.silence_threshold, self.min_active_fraction, self.seed),
            "val": self.pairs["val"], "test": self.pairs["test"],
        }

    def lengths(self, stage: str) -> list[int] | None:
        return None if stage == "train" else self.pairs[stage].lengths()  # type: ignore[attr-defined]

    def collate(self, items: Sequence[dict[str, Any]]) -> PairedMelBatch:
        return collate_pairs(items)

    def mel_range(self) -> tuple[float, float]:
        """(min, max) over the training targets (and, for file pairs, the inputs too; degraded inputs stay inside
        their target's range by construction). Computed once, identically on every rank."""
        if self._range is None:
            if "train" not in self.pairs:
                raise RuntimeError("PairedMelDataModule.setup() has not prepared the training split")
            train = self.pairs["train"]
            lo, hi = math.inf, -math.inf
            for i in range(len(train)):  # type: ignore[arg-type]
                if isinstance(train, DegradedPairs):
                    arrays = [train.utterances[i]["mel"]]
                else:
                    item = train[i]
                    arrays = [item["mel_input"], item["mel_target"]]
                for a in arrays:
                    lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
            if not hi > lo:
                raise DatasetFormatError(f"the training mel spectrograms are constant ({lo}); cannot normalise them")
            self._range = (lo, hi)
        return self._range
