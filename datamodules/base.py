"""What every zoo DataModule shares: the real/embedded switch, seeded splits, sharded loaders, media examples."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.sampling import BucketBatchSampler, ResumableDataLoader, ShardSampler
from zoo.config import check_at_least
from zoo.download import DownloadError
from zoo.errors import DatasetNotFoundError

Source = Literal["real", "embedded"]


def _random_state_neutral(method: Callable) -> Callable:
    """Runs a DataModule hook with the Python, NumPy and torch CPU random states saved and restored around it."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            try:
                return method(*args, **kwargs)
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

    wrapper._random_state_neutral = True  # type: ignore[attr-defined]
    return wrapper


def split_indices(n: int, val_size: int, test_size: int, seed: int) -> dict[str, np.ndarray]:
    """Deterministic train/val/test split of ``range(n)``: a seeded permutation, test first, then val, rest train.

    The same ``(n, val_size, test_size, seed)`` gives the same split on every machine (NumPy's PCG64 stream);
    the three parts never overlap. Each part is returned sorted so file order is kept inside it.
    """
    if val_size < 0 or test_size < 0:
        raise ValueError(f"val_size and test_size must be >= 0, but got {val_size} and {test_size}")
    if val_size + test_size >= n:
        raise ValueError(f"val_size + test_size = {val_size + test_size} leaves no training data out of {n} items")
    perm = np.random.default_rng(seed).permutation(n)
    test = np.sort(perm[:test_size])
    val = np.sort(perm[test_size : test_size + val_size])
    train = np.sort(perm[test_size + val_size :])
    return {"train": train, "val": val, "test": test}


class ZooDataModule(L.LightningDataModule):
    """Base of the zoo's DataModules: loaders that shard themselves across DDP ranks.

    Subclasses set ``self.datasets[stage]`` in ``setup`` and implement ``collate``; they may give per-item
    lengths (``lengths(stage)``) to get length-bucketed batches.

    ``prepare_data`` and ``setup`` leave the global random states as they found them, whatever they do (generate a
    corpus, download, cache features): training then draws the same random numbers whether or not the caches
    existed, so a run is reproducible from its seed alone (and a resumed run matches an uninterrupted one).
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("prepare_data", "setup"):
            hook = cls.__dict__.get(name)
            if hook is not None and not getattr(hook, "_random_state_neutral", False):
                setattr(cls, name, _random_state_neutral(hook))

    def __init__(self, *, source: Source, root: str, download: bool, batch_size: int, num_workers: int, seed: int):
        super().__init__()
        if source not in ("real", "embedded"):
            raise ValueError(f"source must be 'real' or 'embedded', but got {source!r}")
        check_at_least(1, batch_size=batch_size)
        check_at_least(0, num_workers=num_workers)
        self.source = source
        self.root = root
        self.download = download
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.datasets: dict[str, Dataset] = {}

    # --- to implement -------------------------------------------------------------------------------------
    def collate(self, items: Sequence[dict[str, Any]]) -> Any:
        raise NotImplementedError

    def lengths(self, stage: str) -> Sequence[int] | None:
        """Per-item lengths used for bucketing, or None for fixed-size items."""
        return None

    # --- shared -------------------------------------------------------------------------------------------
    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        world, rank = trainer.world_size, trainer.global_rank
        if world > 1 and getattr(trainer._accelerator_connector, "use_distributed_sampler", False):
            raise ValueError(
                "the zoo's DataModules shard their batches across ranks themselves; run with "
                "--trainer.use_distributed_sampler false (the zoo CLI's default) or Trainer(use_distributed_sampler=False)"
            )
        return world, rank

    def _dataset(self, stage: str) -> Dataset:
        if stage not in self.datasets:
            raise RuntimeError(f"{type(self).__name__}.setup() has not prepared the {stage!r} split")
        return self.datasets[stage]

    def _loader(self, stage: str, *, shuffle: bool, drop_last: bool) -> DataLoader:
        dataset = self._dataset(stage)
        world, rank = self._world()
        lengths = self.lengths(stage)
        sampler = BucketBatchSampler(
            lengths,
            self.batch_size,
            num_items=len(dataset),  # type: ignore[arg-type]
            shuffle=shuffle,
            drop_last=drop_last,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
        )
        return ResumableDataLoader(
            dataset,
            batch_sampler=sampler,
            consumed=self._consumed_batches if stage == "train" else None,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=False,
        )

    def _consumed_batches(self) -> int:
        """Batches of the current epoch whose training step has run (saved with a mid-epoch checkpoint)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, drop_last=False)

    def predict_dataloader(self) -> DataLoader:
        # Lightning's predict loop rebuilds the loader's batch sampler (to record indices) around
        # ``dataloader.sampler``, so sharding lives in the sampler here: a plain in-order BatchSampler over this
        # rank's items, every item predicted exactly once across ranks.
        dataset = self._dataset("test")
        world, rank = self._world()
        return DataLoader(dataset, sampler=ShardSampler(len(dataset), world, rank), batch_size=self.batch_size,  # type: ignore[arg-type]
                          shuffle=False, drop_last=False, collate_fn=self.collate, num_workers=self.num_workers)

    def media_batch(self, num_examples: int, stage: str = "val") -> Any:
        """A fixed batch of the first ``num_examples`` items of a split, for the media-logging callbacks."""
        dataset = self._dataset(stage)
        n = min(num_examples, len(dataset))  # type: ignore[arg-type]
        return self.collate([dataset[i] for i in range(n)])


def missing_data_message(what: str, where: str, datamodule: str, url_hint: str) -> str:
    """The one wording of the 'dataset is not there' error, naming both ways out."""
    return (
        f"{what} not found at {where}. Either download it (pass --data.download true, or fetch it from {url_hint} "
        f"and put it there), or run on the embedded offline corpus with --data.source embedded "
        f"({datamodule})."
    )


def download_or_explain(fetch: Callable[[], Any], what: str, datamodule: str) -> Any:
    """Run a download; if it fails, say so in one error that also names the offline switch."""
    try:
        return fetch()
    except DownloadError as err:
        raise DatasetNotFoundError(
            f"could not download {what}: {err}. Run on the embedded offline corpus instead with "
            f"--data.source embedded ({datamodule})."
        ) from err


def progress_iter(iterable: Any, total: int | None, desc: str, enabled: bool = True) -> Any:
    """tqdm progress bar for long data steps (feature caching, corpus generation), silent when disabled."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, dynamic_ncols=True, leave=False)

