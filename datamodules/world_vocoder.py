"""(mel spectrogram, WORLD parameters) of one CMU ARCTIC speaker, for the WORLD vocoder (``zoo.models.world_vocoder``).

Inputs are the speaker's natural mel spectrograms (the CMU ARCTIC DataModule's feature cache) and, with
``pairs_dir``, an upstream model's teacher-forced predictions of them (ground-truth-aligned, as Tacotron 2 fine-tunes
its WaveNet on them: Shen et al. 2018), read from a ``pairs_dir`` index as ``python -m zoo reproduce postnet
--upstream`` and the attention-distillation chain write it (``datamodules.postnet``: its ``input`` column is the
prediction; the ids name the target speaker's utterances). Targets are ``zoo.world.world_parameters`` of the
recordings, frame-aligned with the mel, computed once per speaker, AudioConfig and F0 range (``workers`` processes:
Harvest costs ~0.4 s per utterance) and cached as ``<feature cache>/world-f0_<floor>-<ceiling>/<id>.npy``.

Training items are random ``crop_frames`` crops (the crop of item ``i`` in epoch ``e`` drawn from a generator seeded
with (seed, e, i), so a resumed run crops as an uninterrupted one); with probability ``degrade_probability`` a crop's
input is blurred across mel bins by ``degrade_mel`` with a sigma drawn from [0, ``degrade_sigma_max``], so the
vocoder also learns the over-smoothed spectra a regression model predicts. Validation and test items are whole
utterances: natural and (with ``pairs_dir``) predicted, told apart by the batch's ``predicted`` flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.base import Source, ZooDataModule
from datamodules.batches import pad_sequences
from datamodules.cmu_arctic import CMUArcticDataModule, Split, speaker_dir
from datamodules.postnet import degrade_mel, read_pairs_index, utterance_seed
from datamodules.world_features import build_world_cache, speaker_f0_range, world_cache_dir, world_stats
from zoo.audio import AudioConfig
from zoo.errors import DatasetFormatError

@dataclass
class MelWorldBatch:
    """Padded (mel, WORLD parameters) utterances or crops; padding is 0 and ``lengths`` says what is real."""

    ids: list[str]
    mel: torch.Tensor  # (B, T, n_mels) in [0, 1]
    world: torch.Tensor  # (B, T, world_dim) zoo.world layout
    lengths: torch.Tensor  # (B,) frames
    predicted: torch.Tensor  # (B,) bool: the input is an upstream model's prediction, not the natural mel


class _Utterances(Dataset):
    """(id, mel, WORLD parameters) entries: natural mels from a feature store, predicted ones from .npy files."""

    def __init__(self, entries: Sequence[tuple[str, Any, Path, bool]]) -> None:
        self.entries = list(entries)  # (id, store or .npy path of the mel, parameters path, predicted)
        self._lengths: list[int] | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def lengths(self) -> list[int]:
        if self._lengths is None:  # the files' headers, read once (every loader asks for them)
            self._lengths = [len(np.load(p, mmap_mode="r")) for _, _, p, _ in self.entries]
        return self._lengths

    def __getitem__(self, i: int) -> dict[str, Any]:
        utt_id, mel_source, params_path, predicted = self.entries[i]
        mel = (torch.from_numpy(np.load(mel_source).astype(np.float32)) if isinstance(mel_source, Path)
               else mel_source.get(utt_id, "mel"))  # (T, n_mels)
        world = torch.from_numpy(np.load(params_path))  # (T', world_dim)
        t = min(len(mel), len(world))  # a prediction padded to the reduction factor is cut to the truth's length
        return {"id": utt_id, "mel": mel[:t], "world": world[:t], "predicted": predicted}


class _RandomCrops(Dataset):
    def __init__(self, utterances: _Utterances, crop_frames: int, degrade_probability: float,
                 degrade_sigma_max: float, seed: int) -> None:
        self.utterances, self.crop_frames, self.seed = utterances, crop_frames, seed
        self.degrade_probability, self.degrade_sigma_max = degrade_probability, degrade_sigma_max

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.utterances[i]
        epoch = int(getattr(i, "epoch", 0))  # the sampler's EpochIndex
        g = np.random.default_rng([self.seed, epoch, int(i)])
        t = len(item["mel"])
        start = int(g.integers(0, max(1, t - self.crop_frames + 1)))
        mel = item["mel"][start : start + self.crop_frames]
        if g.random() < self.degrade_probability and self.degrade_sigma_max > 0:
            sigma = float(g.uniform(0.0, self.degrade_sigma_max))
            mel = degrade_mel(mel, sigma_freq=sigma, sigma_time=0.0, rank=10**6, jitter=0.0,
                              seed=utterance_seed(self.seed, item["id"]))
        return {**item, "mel": mel, "world": item["world"][start : start + self.crop_frames]}


class WorldVocoderDataModule(ZooDataModule):
    """One CMU ARCTIC speaker's (mel, WORLD parameters), natural and (``pairs_dir``) predicted: module docstring.

    ``f0_range``: Harvest's search range for the targets; null takes ``zoo.metrics.mcd.F0_RANGES`` for the real
    corpus's bdl and slt, else the two-pass estimate (``two_pass_f0_range``) on up to 40 training utterances.
    ``split``, ``source``, ``root``, ``download``, ``cache_dir``, ``val_size``/``test_size`` and ``embedded_size``
    are the CMU ARCTIC DataModule's."""

    def __init__(
        self,
        *,
        root: str = "data",
        source: Source = "real",
        download: bool = False,
        speaker: str = "slt",
        split: Split = "seeded",
        audio: AudioConfig = AudioConfig(),
        pairs_dir: str | None = None,
        f0_range: tuple[float, float] | None = None,
        crop_frames: int = 128,
        degrade_probability: float = 0.5,
        degrade_sigma_max: float = 2.0,
        batch_size: int = 32,
        num_workers: int = 0,
        workers: int = 2,
        val_size: int = 50,
        test_size: int = 50,
        embedded_size: int | None = None,
        cache_dir: str | None = None,
        seed: int = 1234,
        progress: bool = True,
    ) -> None:
        super().__init__(source=source, root=root, download=download, batch_size=batch_size,
                         num_workers=num_workers, seed=seed)
        if crop_frames < 1:
            raise ValueError(f"crop_frames must be >= 1, but got {crop_frames}")
        if not 0.0 <= degrade_probability <= 1.0:
            raise ValueError(f"degrade_probability must be in [0, 1], but got {degrade_probability}")
        if degrade_sigma_max < 0:
            raise ValueError(f"degrade_sigma_max must be >= 0, but got {degrade_sigma_max}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, but got {workers}")
        if f0_range is not None and not 0 < f0_range[0] < f0_range[1]:
            raise ValueError(f"f0_range must be (floor, ceiling) with 0 < floor < ceiling, but got {f0_range}")
        self.save_hyperparameters()
        self.audio, self.speaker = audio, speaker
        self.pairs_dir = Path(pairs_dir) if pairs_dir is not None else None
        self.crop_frames, self.workers, self.progress = crop_frames, workers, progress
        self.degrade_probability, self.degrade_sigma_max = degrade_probability, degrade_sigma_max
        self._f0_range = tuple(f0_range) if f0_range is not None else None
        common: dict[str, Any] = {"root": root, "source": source, "download": download, "audio": audio,
                                  "batch_size": batch_size, "val_size": val_size, "test_size": test_size,
                                  "seed": seed, "progress": progress, "cache_dir": cache_dir}
        if embedded_size is not None:
            common["embedded_size"] = embedded_size
        self.inner = CMUArcticDataModule(mode="single", target_speaker=speaker, split=split, **common)
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- the WORLD parameter cache --------------------------------------------------------------------------
    def _store(self):
        return self.inner.feature_store(speaker_dir(self.inner.folder, self.speaker))

    def f0_range(self) -> tuple[float, float]:
        """Harvest's range for this speaker (see the class docstring)."""
        if self._f0_range is None:
            utterances = self.inner._read()[self.speaker]
            self._f0_range = speaker_f0_range(self.inner.source, self.speaker, [u.wav_path for u in utterances],
                                              self.audio.sample_rate)
        return self._f0_range

    def world_dir(self) -> Path:
        return world_cache_dir(self._store().dir, self.f0_range())

    def prepare_data(self) -> None:
        self.inner.prepare_data()
        utterances = self.inner._read()[self.speaker]
        build_world_cache([(u.id, u.wav_path) for u in utterances], self.world_dir(), self.audio, self.f0_range(),
                          self.workers, self.progress, f"WORLD analysis of {self.speaker}")

    # --- splits -----------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.inner.setup(stage)
        folder = self.world_dir()
        predicted: dict[str, list[tuple[str, Path]]] = {"train": [], "val": [], "test": []}
        if self.pairs_dir is not None:
            rows = read_pairs_index(self.pairs_dir)
            if len(rows[0]) != 4:
                raise DatasetFormatError(f"{self.pairs_dir}: the vocoder's pairs need the index's split column, so "
                                         "that no prediction of a validation prompt is trained on")
            for utt_id, inp, _, split in rows:
                predicted[split].append((utt_id, self.pairs_dir / inp))
        parts: dict[str, _Utterances] = {}
        for split in ("train", "val", "test"):
            ds = self.inner.datasets[split]
            ids = {u.id for u in ds.utterances}  # type: ignore[attr-defined]
            entries: list[tuple[str, Any, Path, bool]] = [
                (u.id, ds.store, folder / f"{u.id}.npy", False)  # type: ignore[attr-defined]
                for u in ds.utterances if (folder / f"{u.id}.npy").is_file()  # type: ignore[attr-defined]
            ]
            for utt_id, path in predicted[split]:
                if utt_id not in ids or not (folder / f"{utt_id}.npy").is_file():
                    raise DatasetFormatError(f"{self.pairs_dir}: {utt_id!r} ({split}) is not a {split} utterance of "
                                             f"{self.speaker} in {self.inner.folder}: the predictions and the "
                                             "corpus do not fit together")
                entries.append((utt_id, path, folder / f"{utt_id}.npy", True))
            parts[split] = _Utterances(entries)
        if len(parts["train"]) == 0:
            raise DatasetFormatError(f"no training utterance of {self.speaker} has WORLD parameters in {folder}")
        self.parts = parts
        self.datasets = {"train": _RandomCrops(parts["train"], self.crop_frames, self.degrade_probability,
                                               self.degrade_sigma_max, self.seed),
                         "val": parts["val"], "test": parts["test"]}

    def lengths(self, stage: str) -> Sequence[int] | None:
        return None if stage == "train" else self.parts[stage].lengths()

    def collate(self, items: Sequence[dict[str, Any]]) -> MelWorldBatch:
        mel, lengths = pad_sequences([it["mel"] for it in items])
        world, _ = pad_sequences([it["world"] for it in items])
        return MelWorldBatch(ids=[it["id"] for it in items], mel=mel, world=world, lengths=lengths,
                             predicted=torch.tensor([bool(it["predicted"]) for it in items]))

    def world_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) per parameter over the natural training frames, from which the model derives its scale
        (voicing is a probability: mean 0, std 1)."""
        if self._stats is None:
            mean, std = world_stats([p for _, _, p, predicted in self.parts["train"].entries if not predicted])
            mean[-1], std[-1] = 0.0, 1.0
            self._stats = (mean, std)
        return self._stats


__all__ = ["MelWorldBatch", "WorldVocoderDataModule"]
