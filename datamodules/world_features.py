"""WORLD parameters of a speaker's recordings (``zoo.world.world_parameters``: mel-cepstrum, interpolated log F0, band
aperiodicity, voicing at the mel front end's frame rate), computed once per speaker, AudioConfig and F0 range and
cached beside its mel features as ``<feature cache>/world-f0_<floor>-<ceiling>/<id>.npy``.

One home for the two DataModules that read them: the WORLD vocoder's targets (``datamodules.world_vocoder``) and a
voice converter's targets when it predicts WORLD parameters (``CMUArcticDataModule(target_features="world")``).
Harvest costs ~0.4 s per utterance, so the analysis runs in ``workers`` processes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from zoo.audio import AudioConfig

log = logging.getLogger(__name__)


def speaker_f0_range(source: str, speaker: str, wav_paths: Sequence[Path], sample_rate: int) -> tuple[float, float]:
    """Harvest's F0 search range for one speaker: ``zoo.metrics.mcd.F0_RANGES`` for the real corpus's speakers it
    lists, else the two-pass estimate (``two_pass_f0_range``) on up to 40 of ``wav_paths`` spread over the list."""
    from zoo.metrics.mcd import F0_RANGES, two_pass_f0_range

    if source == "real" and speaker in F0_RANGES:
        return F0_RANGES[speaker]
    from zoo.audio import load_wav

    paths = sorted(wav_paths)
    chosen = paths[:: max(1, len(paths) // 40)][:40]
    wavs = [load_wav(p, sample_rate).double().numpy() for p in chosen]
    lo, hi = two_pass_f0_range(wavs, sample_rate)
    return float(round(lo)), float(round(hi))


def world_cache_dir(feature_dir: Path, f0_range: tuple[float, float]) -> Path:
    """The folder of one speaker's WORLD parameters inside its feature cache (``FeatureStore.dir``)."""
    lo, hi = f0_range
    return feature_dir / f"world-f0_{lo:g}-{hi:g}"


def _analyse(job: tuple[str, str, int, int, tuple[float, float]]) -> tuple[str, str | None]:
    """Compute one utterance's WORLD parameters into its cache file; (path, error or None). Runs in a worker."""
    from zoo.audio import AudioError, load_wav
    from zoo.world import world_parameters

    torch.set_num_threads(1)
    path, out, sample_rate, hop, f0_range = job
    try:
        wav = load_wav(path, sample_rate).double().numpy()
        params = world_parameters(wav, sample_rate, hop, f0_range)
    except (AudioError, FileNotFoundError, ValueError) as err:
        return path, str(err)
    tmp = Path(out).with_suffix(".tmp.npy")
    np.save(tmp, params)
    tmp.replace(out)
    return path, None


def build_world_cache(items: Sequence[tuple[str, Path]], folder: Path, audio: AudioConfig,
                      f0_range: tuple[float, float], workers: int = 2, progress: bool = True,
                      desc: str = "WORLD analysis") -> list[str]:
    """Analyse every (id, wav path) whose ``folder/<id>.npy`` is missing; returns the recordings that could not be
    analysed (unreadable, empty, ...), which are left out with a warning, each as ``path: reason``."""
    from zoo.world import world_layout

    if workers < 1:
        raise ValueError(f"workers must be >= 1, but got {workers}")
    world_layout(audio.sample_rate)  # a clear error below 12 kHz, before any worker starts
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(path), str(folder / f"{utt_id}.npy"), audio.sample_rate, audio.hop_length, f0_range)
            for utt_id, path in items if not (folder / f"{utt_id}.npy").is_file()]
    if not jobs:
        return []
    from datamodules.base import progress_iter

    desc = f"{desc} ({len(jobs)} utterances)"
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(progress_iter(pool.map(_analyse, jobs, chunksize=4), len(jobs), desc, progress))
    else:
        results = list(progress_iter(map(_analyse, jobs), len(jobs), desc, progress))
    failed = [f"{path}: {err}" for path, err in results if err is not None]
    if failed:
        log.warning("%d of %d recordings could not be analysed and are left out: %s", len(failed), len(jobs),
                    "; ".join(failed[:3]))
    return failed


def world_stats(paths: Sequence[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) per parameter over the frames of the given cached utterances (std floored at 1e-3), from which a
    model derives its output scale."""
    if not paths:
        raise ValueError("no cached WORLD parameters to take statistics of")
    frames = torch.from_numpy(np.concatenate([np.load(p) for p in paths])).double()  # (N, world_dim)
    return frames.mean(0).float(), frames.std(0).clamp(min=1e-3).float()


__all__ = ["build_world_cache", "speaker_f0_range", "world_cache_dir", "world_stats"]
