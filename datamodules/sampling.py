"""Batch samplers shared by every DataModule: length bucketing and DDP sharding in one place."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Sampler


class EpochIndex(int):
    """A dataset index that also says which epoch asked for it, for datasets whose items are random per epoch
    (training crops): seeding from ``(seed, epoch, index)`` makes them independent of when the loader fetched them."""

    epoch: int

    def __new__(cls, index: int, epoch: int) -> EpochIndex:
        value = super().__new__(cls, index)
        value.epoch = epoch
        return value

    def __reduce__(self) -> tuple:  # DataLoader workers receive their indices pickled
        return (EpochIndex, (int(self), self.epoch))


class BucketBatchSampler(Sampler[list[int]]):
    """Length-bucketed batches, sharded across DDP ranks: each rank a distinct shard, every rank the same count.

    Indices are shuffled (seed + epoch), cut into chunks of ``batch_size * bucket_batches`` items, each chunk is
    sorted by length and cut into batches (so a batch holds similar lengths and little padding), and the batch
    order is shuffled. All ranks build the same global list of batches from the same seed; rank ``r`` takes
    batches ``r, r + R, r + 2R, ...``. With ``drop_last`` the batches that do not divide evenly among ranks (and a
    last partial batch) are dropped; otherwise the list is padded by repeating its first batches, as
    ``DistributedSampler`` pads indices. Without lengths (images) it is a plain shuffled, sharded batch sampler.
    """

    def __init__(
        self,
        lengths: Sequence[int] | None,
        batch_size: int,
        *,
        num_items: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        bucket_batches: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, but got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas), but got rank={rank}, num_replicas={num_replicas}")
        if bucket_batches < 1:
            raise ValueError(f"bucket_batches must be >= 1, but got {bucket_batches}")
        if lengths is None:
            if num_items is None:
                raise ValueError("give either lengths or num_items")
            self.lengths = None
            self.num_items = num_items
        else:
            self.lengths = np.asarray(lengths, dtype=np.int64)
            self.num_items = len(self.lengths)
        if self.num_items < 1:
            raise ValueError("cannot sample batches from an empty dataset")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.bucket_batches = bucket_batches
        self.epoch = 0
        self.skip_next = 0  # batches of the next iteration already trained on before a resume

    @property
    def sampler(self) -> BucketBatchSampler:
        # Lightning calls set_epoch on ``dataloader.batch_sampler.sampler`` at every epoch start.
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip_next = 0  # a resume position belongs to the epoch it was saved in
        self.epoch = epoch

    def _global_batches(self) -> list[list[int]]:
        n = self.num_items
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.lengths is not None:
            if self.shuffle:
                chunk = self.batch_size * self.bucket_batches
                pieces = [order[i : i + chunk] for i in range(0, n, chunk)]
                # stable sort keeps the shuffled order among equal lengths
                order = np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pieces])
            else:
                order = np.argsort(self.lengths, kind="stable")
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            perm = np.random.default_rng((self.seed, self.epoch, 1)).permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def _shard_count(self, n_batches: int) -> int:
        if self.drop_last:
            return n_batches // self.num_replicas
        return math.ceil(n_batches / self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._global_batches()
        per_rank = self._shard_count(len(batches))
        total = per_rank * self.num_replicas
        if total > len(batches):
            if not batches:
                return iter(())
            batches = (batches * math.ceil(total / len(batches)))[:total]
        mine = batches[self.rank : total : self.num_replicas]
        # Every iterator of the resumed epoch skips (not only the first: Lightning may create and drop one before
        # training, e.g. with loader workers); the next epoch's set_epoch clears it.
        skip = self.skip_next
        return iter([[EpochIndex(i, self.epoch) for i in batch] for batch in mine[skip:]])

    def __len__(self) -> int:
        n_batches = self.num_items // self.batch_size if self.drop_last else math.ceil(self.num_items / self.batch_size)
        return self._shard_count(n_batches)


class ShardSampler(Sampler[int]):
    """Items ``rank, rank + R, rank + 2R, ...`` in order: each item on exactly one rank (for prediction)."""

    def __init__(self, num_items: int, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas), but got rank={rank}, num_replicas={num_replicas}")
        self.num_items, self.num_replicas, self.rank = num_items, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.num_items, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.num_items, self.num_replicas))


class ResumableDataLoader(DataLoader):
    """A DataLoader over a ``BucketBatchSampler`` whose position inside an epoch goes into checkpoints.

    Lightning saves ``state_dict()`` of stateful training loaders with the loop state and calls
    ``load_state_dict()`` before it creates the iterator of a resumed run, so a run stopped mid-epoch continues
    with exactly the batches it had not trained on yet. ``consumed`` reads how many batches of the current
    epoch the training step has processed (the loader itself runs ahead: Lightning prefetches a batch).
    """

    def __init__(self, *args: Any, consumed: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.batch_sampler, BucketBatchSampler):
            raise ValueError("ResumableDataLoader needs a BucketBatchSampler as its batch_sampler")
        self._consumed = consumed

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "consumed": self._consumed() if self._consumed else 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.set_epoch(int(state["epoch"]))
        self.batch_sampler.skip_next = int(state["consumed"])
