"""CMU ARCTIC (Kominek & Black 2003): parallel prompts read by several speakers, or its embedded eSpeak twin."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from datamodules.base import download_or_explain, missing_data_message
from datamodules.world_features import build_world_cache, speaker_f0_range, world_cache_dir, world_stats
from datamodules.speech import (
    ParallelDataset, PooledDataset, SpeechDataModule, Utterance, UtteranceDataset, listed_utterances,
)
from zoo.download import CMU_ARCTIC_SPEAKERS, DATASETS, download_and_extract
from zoo.errors import DatasetFormatError, DatasetNotFoundError

log = logging.getLogger(__name__)

_PROMPT_LINE = re.compile(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$')
_HINT = "http://festvox.org/cmu_arctic/packed/"
_PROMPT_ID = re.compile(r"^arctic_([ab])(\d{4})$")

Split = Literal["seeded", "standard"]
Mode = Literal["parallel", "single", "pooled"]
TargetFeatures = Literal["mel", "world"]


def standard_split_part(prompt_id: str) -> str:
    """The part of the standard CMU ARCTIC voice-conversion split a prompt belongs to: of the 1,132 sorted prompt ids,
    the first 932 are ``train`` (``arctic_a0001``-``a0593``, ``b0001``-``b0339``), the next 100 ``dev``
    (``b0340``-``b0439``) and the last 100 ``eval`` (``b0440``-``b0539``), as in the published ARCTIC tables
    (seq2seq-vc's and ESPnet's ``egs/arctic/vc1``). Raises ``ValueError`` for an id outside the ARCTIC set."""
    m = _PROMPT_ID.match(prompt_id)
    number = int(m.group(2)) if m else 0
    if m is None or number < 1 or number > (593 if m.group(1) == "a" else 539):
        raise ValueError(f"{prompt_id!r} is not a CMU ARCTIC prompt id (arctic_a0001..a0593, arctic_b0001..b0539)")
    if m.group(1) == "a" or number <= 339:
        return "train"
    return "dev" if number <= 439 else "eval"


def speaker_dir(root: Path, speaker: str) -> Path:
    return root / f"cmu_us_{speaker}_arctic"


def read_arctic_speaker(folder: Path, speaker: str) -> list[Utterance]:
    """Parse ``etc/txt.done.data`` (lines ``( arctic_a0001 "text" )``) and pair each prompt with ``wav/<id>.wav``.

    Prompts with an empty text are left out with a warning; prompts whose wav is missing are left out with a
    warning too (the real corpus has a few such gaps for some speakers); a malformed line is a format error.
    """
    prompts = folder / "etc" / "txt.done.data"
    if not prompts.is_file():
        raise DatasetNotFoundError(f"{prompts} is missing: {folder} is not a CMU ARCTIC speaker folder")
    return listed_utterances(prompts, _prompt_entries(prompts), folder / "wav", speaker, missing_wav_is_error=False)


def _prompt_entries(prompts: Path) -> Iterator[tuple[str, str]]:
    for lineno, line in enumerate(prompts.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        m = _PROMPT_LINE.match(line.strip())
        if not m:
            raise DatasetFormatError(f"{prompts}:{lineno}: expected '( arctic_a0001 \"text\" )', got {line[:80]!r}")
        yield m.group(1), m.group(2).strip()


class CMUArcticDataModule(SpeechDataModule):
    """CMU ARCTIC: parallel (source speaker, target speaker, same prompt) pairs, or one speaker's utterances.

    ``mode: parallel`` yields ``ParallelBatch`` (source mel, target mel, prompt ids) for voice conversion;
    ``mode: single`` yields ``SpeechBatch`` for ``target_speaker`` (TTS, vocoders). ``source: real`` reads
    ``<root>/cmu_arctic/cmu_us_<spk>_arctic`` (16 kHz; resampled on load to ``audio.sample_rate``);
    ``source: embedded`` generates two eSpeak voices reading the same prompts under
    ``<root>/embedded/cmu_arctic``. Splits are by prompt (seeded, or ``split: standard``, the published ARCTIC
    split), so a sentence never appears in two splits.

    ``target_features: world`` (parallel mode) adds the target speaker's WORLD parameters to each batch
    (``ParallelBatch.tgt_world``: ``zoo.world.world_parameters`` at the mel hop, Harvest in the speaker's F0 range,
    analysed once in ``world_workers`` processes and cached: ``datamodules.world_features``), for a converter that
    predicts them and is heard through WORLD synthesis; ``world_stats()`` gives their training-frame scale.
    """

    def __init__(
        self,
        *,
        mode: Mode = "parallel",
        split: Split = "seeded",
        source_speaker: str = "bdl",
        target_speaker: str = "slt",
        val_size: int = 50,
        test_size: int = 50,
        embedded_size: int = 100,
        target_features: TargetFeatures = "mel",
        world_workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(val_size=val_size, test_size=test_size, **kwargs)
        if mode not in ("parallel", "single", "pooled"):
            raise ValueError(f"mode must be 'parallel', 'single' or 'pooled', but got {mode!r}")
        if split not in ("seeded", "standard"):
            raise ValueError(f"split must be 'seeded' or 'standard', but got {split!r}")
        for name, spk in (("source_speaker", source_speaker), ("target_speaker", target_speaker)):
            if spk not in CMU_ARCTIC_SPEAKERS:
                raise ValueError(f"{name} must be one of {', '.join(CMU_ARCTIC_SPEAKERS)}, but got {spk!r}")
        if mode != "single" and source_speaker == target_speaker:
            raise ValueError(f"parallel mode needs two different speakers, but both are {source_speaker!r}")
        if mode == "parallel" and self.kinds != ("mel",):
            raise ValueError("parallel mode yields mel spectrograms only; load_linear/load_wav need mode: single")
        if embedded_size < 10:
            raise ValueError(f"embedded_size must be >= 10, but got {embedded_size}")
        if target_features not in ("mel", "world"):
            raise ValueError(f"target_features must be 'mel' or 'world', but got {target_features!r}")
        if target_features == "world" and mode != "parallel":
            raise ValueError("target_features: world needs mode: parallel (the converter's targets); a WORLD vocoder "
                             "reads WORLD parameters through datamodules.WorldVocoderDataModule")
        if world_workers < 1:
            raise ValueError(f"world_workers must be >= 1, but got {world_workers}")
        if target_features == "world":
            from zoo.world import world_layout

            world_layout(self.audio.sample_rate)  # a clear error below 12 kHz
        self.target_features = target_features
        self.world_workers = world_workers
        self._f0_range: tuple[float, float] | None = None
        self._world_stats: tuple[Any, Any] | None = None
        self.mode = mode
        self.split = split
        self.source_speaker, self.target_speaker = source_speaker, target_speaker
        self.embedded_size = embedded_size
        self.save_hyperparameters()

    @property
    def speakers(self) -> tuple[str, ...]:
        return (self.source_speaker, self.target_speaker) if self.mode != "single" else (self.target_speaker,)

    @property
    def folder(self) -> Path:
        base = Path(self.root) / "embedded" if self.source == "embedded" else Path(self.root)
        return base / "cmu_arctic"

    def _ensure_corpus(self) -> None:
        if self.source == "embedded":
            from zoo.corpora import write_cmu_arctic

            unknown = [s for s in self.speakers if s not in ("bdl", "slt")]
            if unknown:
                raise ValueError(f"the embedded corpus has the speakers bdl and slt only, not {unknown}")
            write_cmu_arctic(self.folder, speakers=("bdl", "slt"), n_prompts=self.embedded_size, seed=self.seed,
                             progress=self.progress)
            return
        for spk in self.speakers:
            folder = speaker_dir(self.folder, spk)
            if (folder / "etc" / "txt.done.data").is_file():
                continue
            if not self.download:
                raise DatasetNotFoundError(
                    missing_data_message(f"CMU ARCTIC speaker {spk!r}", folder, "CMUArcticDataModule", _HINT)
                )
            res = next(r for r in DATASETS["CMU_ARCTIC"] if r.filename == f"cmu_us_{spk}_arctic.tar.bz2")
            download_or_explain(
                lambda: download_and_extract(res.url, self.folder, res.sha256, marker=f".cmu_us_{spk}_arctic.extracted",
                                             progress=self.progress),
                f"CMU ARCTIC speaker {spk!r}", "CMUArcticDataModule",
            )

    def _read(self) -> dict[str, list[Utterance]]:
        return {spk: read_arctic_speaker(speaker_dir(self.folder, spk), spk) for spk in self.speakers}

    def prepare_data(self) -> None:
        self._ensure_corpus()
        for spk, utterances in self._read().items():
            self.feature_store(speaker_dir(self.folder, spk)).build(utterances, self.kinds, self.progress)
        if self.target_features == "world":
            utterances = self._read()[self.target_speaker]
            build_world_cache([(u.id, u.wav_path) for u in utterances], self.world_dir(), self.audio,
                              self.f0_range(), self.world_workers, self.progress,
                              f"WORLD analysis of {self.target_speaker}")

    # --- the target's WORLD parameters (target_features: world) -----------------------------------------------
    def f0_range(self) -> tuple[float, float]:
        """Harvest's F0 range for the target speaker (``datamodules.world_features.speaker_f0_range``)."""
        if self._f0_range is None:
            utterances = self._read()[self.target_speaker]
            self._f0_range = speaker_f0_range(self.source, self.target_speaker, [u.wav_path for u in utterances],
                                              self.audio.sample_rate)
        return self._f0_range

    def world_dir(self) -> Path:
        """The folder of the target speaker's cached WORLD parameters."""
        return world_cache_dir(self.feature_store(speaker_dir(self.folder, self.target_speaker)).dir, self.f0_range())

    def world_stats(self) -> tuple[Any, Any]:
        """(mean, std) per WORLD parameter over the target's training frames (after ``setup``), from which a
        converter predicting them derives its output scale."""
        if self.target_features != "world":
            raise ValueError("world_stats() needs target_features: world")
        if self._world_stats is None:
            if "train" not in self.datasets:
                self.setup("fit")
            folder = self.world_dir()
            pairs = self.datasets["train"].pairs  # type: ignore[attr-defined]
            self._world_stats = world_stats([folder / f"{t.id}.npy" for _, t in pairs])
        return self._world_stats

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        by_speaker = self._read()
        stores = {}
        for spk in self.speakers:
            stores[spk] = self.feature_store(speaker_dir(self.folder, spk))
            stores[spk].load(self.kinds)
        if self.mode in ("single", "pooled"):
            for split, ids in self._parts(sorted({u.id for spk in self.speakers for u in by_speaker[spk]})).items():
                datasets = [
                    UtteranceDataset([u for u in by_speaker[spk] if u.id in ids], stores[spk], self.symbols, self.kinds,
                                     speakers=self.speakers, max_frames=self.max_frames)
                    for spk in self.speakers
                ]
                self.datasets[split] = datasets[0] if len(datasets) == 1 else PooledDataset(datasets)
            return
        src = {u.id: u for u in by_speaker[self.source_speaker]}
        tgt = {u.id: u for u in by_speaker[self.target_speaker]}
        common = sorted(src.keys() & tgt.keys())
        unpaired = len(src.keys() ^ tgt.keys())
        if unpaired:
            log.warning("%d prompts are recorded by only one of %s and %s and are left out", unpaired,
                        self.source_speaker, self.target_speaker)
        if not common:
            raise DatasetFormatError(f"{self.source_speaker} and {self.target_speaker} share no prompt in {self.folder}")
        world_dir = None
        if self.target_features == "world":
            world_dir = self.world_dir()
            missing = [i for i in common if not (world_dir / f"{i}.npy").is_file()]
            if len(missing) == len(common):
                raise DatasetFormatError(f"no prompt of {self.target_speaker} has WORLD parameters in {world_dir}: "
                                         "run prepare_data() first (the CLI does)")
            if missing:
                log.warning("%d prompts of %s have no WORLD parameters in %s (their recordings could not be "
                            "analysed) and are left out", len(missing), self.target_speaker, world_dir)
        for split, ids in self._parts(common).items():
            pairs = [(src[i], tgt[i]) for i in common if i in ids]
            self.datasets[split] = ParallelDataset(pairs, stores[self.source_speaker], stores[self.target_speaker],
                                                   self.symbols, max_frames=self.max_frames, tgt_world_dir=world_dir)

    def _parts(self, ids: list[str]) -> dict[str, set[str]]:
        """train/val/test prompt ids: the seeded split, or the standard one (val = dev, test = eval)."""
        if self.split == "seeded":
            return self._split(ids)
        parts: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
        for prompt_id in ids:
            parts[{"train": "train", "dev": "val", "eval": "test"}[standard_split_part(prompt_id)]].add(prompt_id)
        if not parts["train"] or not parts["val"]:
            raise DatasetFormatError(
                f"the standard CMU ARCTIC split needs train (arctic_a0001-a0593, b0001-b0339) and dev (b0340-b0439) "
                f"prompts, but {self.folder} has {len(parts['train'])} train and {len(parts['val'])} dev prompts "
                f"(the embedded corpus has them with --data.embedded_size 1132; or use --data.split seeded)"
            )
        if not parts["test"]:
            log.warning(
                "%s has no prompt of the standard split's eval part (arctic_b0440-b0539): training on train and "
                "validating on dev; the test split is empty (--data.download true fetches the whole corpus)",
                self.folder,
            )
        return parts

    def _dataset(self, stage: str):
        dataset = super()._dataset(stage)
        if stage == "test" and len(dataset) == 0:  # type: ignore[arg-type]
            raise DatasetFormatError(
                f"the test split of {self.folder} is empty: with --data.split standard it is the eval part "
                f"(arctic_b0440-b0539), which this copy of the corpus lacks; download it with --data.download true"
            )
        return dataset
