"""DataLoaders for training and evaluation, built so that a run is reproducible end to end, and
the data side of a run's setup: where its augmentation runs and what would feed it faster.

Training items are drawn through `ResumableSampler` (order from (seed, epoch), sharded across ranks,
resumable mid-epoch) and wrapped by `SeededDataset`, which seeds torch, numpy and python's `random`
from a per-clip seed before the dataset's own transform runs. So a clip's augmentation is a pure
function of (seed, epoch, index): the same with 0 or 8 workers, on 1 or 4 ranks, and after a resume.

Every loader gets its own `torch.Generator`, so creating an iterator never draws from the global
generator that dropout and masking use (a resumed run would otherwise drift).
"""
from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from videopeft.config import DataConfig
from videopeft.data.device_augment import resolve_augment

from .distributed import ResumableSampler, shard_indices

__all__ = ["SeededDataset", "build_train_loader", "build_eval_loader", "data_config_for",
           "data_levers"]

_log = logging.getLogger(__name__)


class SeededDataset(Dataset):
    """Wraps a dataset so that item ``(index, seed)`` is produced under that seed.

    The global torch / numpy / python generators are seeded for the call and restored afterwards,
    so in the main process (workers = 0) the training RNG stream is left untouched.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only (all that augmentation draws from): torch.manual_seed would
            # also queue a seed for every accelerator, which where CUDA is not initialised (a
            # DataLoader worker) records a Python traceback each time: 0.16 ms, not 1 us
            torch.default_generator.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

    def __getattr__(self, name: str) -> Any:  # class_names, samples, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    """One torch thread per worker: the workers are the parallelism (one per core), and the
    pipeline's few torch ops on small crops gain nothing from threads that would contend with
    the other workers and the training process (PyTorch sets this too; stated here on purpose)."""
    torch.set_num_threads(1)


def build_train_loader(dataset: Dataset, *, batch_size: int, accum_steps: int, workers: int,
                       seed: int, rank: int, world_size: int, pin_memory: bool = False,
                       collate_fn: Callable | None = None) -> tuple[DataLoader, ResumableSampler]:
    """A loader of per-rank micro-batches in the resumable, seeded order, and its sampler.

    Workers persist across epochs: the sampler runs in the main process, so the order and every
    clip's seed are unchanged, and short epochs do not pay a worker start-up each time."""
    sampler = ResumableSampler(len(dataset), batch_size=batch_size, accum_steps=accum_steps,
                               rank=rank, world_size=world_size, seed=seed)
    loader = DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler,
                        num_workers=workers, pin_memory=pin_memory, drop_last=True,
                        persistent_workers=workers > 0, generator=_generator(seed),
                        collate_fn=collate_fn, worker_init_fn=_worker_init)
    return loader, sampler


def build_eval_loader(dataset: Dataset, *, batch_size: int, workers: int, rank: int,
                      world_size: int, collate_fn: Callable | None = None,
                      pin_memory: bool = False) -> DataLoader:
    """This rank's shard of the videos (r, r + world, ...; no padding), in order."""
    shard = Subset(dataset, shard_indices(len(dataset), rank, world_size))
    return DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, generator=_generator(0),
                      collate_fn=collate_fn, worker_init_fn=_worker_init)


def data_config_for(data: DataConfig, device: torch.device) -> DataConfig:
    """The data section as this run uses it: `augment: auto` resolved for `device`."""
    return dataclasses.replace(data, augment=resolve_augment(data.augment, device))


def data_levers(data: DataConfig, device: torch.device, cores: int) -> list[str]:
    """What would feed the model faster, in this run's situation (for the data-share warning)."""
    levers = []
    if data.workers < cores - 1:
        levers.append(f"more DataLoader workers (data.workers: {data.workers}; this machine "
                      f"has {cores} cores for all processes)")
    if data.augment == "worker":
        levers.append("augmentation on the device (data.augment: device), so workers only "
                      "decode" + ("" if device.type == "cuda" else " (meant for a GPU)"))
    if data.num_sample == 1:
        levers.append("repeated augmentation (data.num_sample: 2: two clips per decoded video, "
                      "as VideoMAE's recipes)")
    levers.append("decoding at a reduced size (data.decode_short_side, e.g. 256, if your videos "
                  "are larger than the crops need), or videos pre-resized to a short side of "
                  "240-320 px")
    return levers
