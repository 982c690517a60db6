"""Process-group setup from torchrun's environment, and the few collectives the engine needs.

A run is distributed when torchrun (or any launcher) sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; otherwise it is one process and every helper here is a no-op. The backend is NCCL
when the process has a CUDA device and gloo on CPU.

Single node, 4 GPUs::

    torchrun --nproc_per_node=4 tools/train.py configs/ssv2/adaptmlp.yaml

Two nodes of 8 GPUs (run on every node; the rendezvous endpoint is node 0's address)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=NODE0_HOST:29500 --rdzv_id=myrun tools/train.py CONFIG.yaml

Evaluation shards videos without padding: rank r scores videos r, r+world, r+2*world, ... and
`gather_objects` brings every rank's results to all ranks, where they are re-ordered by video index,
so no video is counted twice and the result equals a one-process run.
"""
from __future__ import annotations

import datetime
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "get_dist_info", "init_distributed", "cleanup", "barrier", "is_main",
           "gather_objects", "broadcast_object", "all_reduce_mean", "shard_indices",
           "ResumableSampler"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: global rank, rank on its node, number of processes, device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def get_dist_info() -> DistInfo:
    """This process's DistInfo from the environment (rank 0 of 1 when torchrun's variables are absent)."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", rank))
    return DistInfo(rank=rank, local_rank=local, world_size=world)


def _pick_device(spec: str, local_rank: int) -> torch.device:
    """`device` config value -> torch.device; 'auto' is this process's GPU when there is one."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device: str = "auto", timeout_min: int = 30) -> DistInfo:
    """Read the environment once, pick the device and, for world > 1, join the process group.

    Safe to call twice: an existing process group is reused.
    """
    info = get_dist_info()
    dev = _pick_device(device, info.local_rank)
    info = DistInfo(info.rank, info.local_rank, info.world_size, dev)
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(minutes=timeout_min)}
        if backend == "nccl":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
        _log.info("process group: %s, rank %d of %d, device %s", backend, info.rank,
                  info.world_size, dev)
    return info


def cleanup() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on global rank 0 (and in a single process)."""
    return not _active() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if _active():
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable `obj`, in rank order, on every rank ([obj] in a single process)."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s picklable `obj` on every rank."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(value: float | torch.Tensor, device: torch.device | None = None) -> float:
    """Mean of a scalar over ranks (for logging only; gradients are averaged by DDP)."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device).detach().clone()
    if _active():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return t.item()


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """The video indices rank `rank` evaluates: r, r + world, ... (no padding, no duplicates)."""
    return list(range(rank, n, world_size))


class ResumableSampler(torch.utils.data.Sampler):
    """Training order that depends only on (seed, epoch), the same for any world size, resumable.

    Each epoch is a permutation of the dataset drawn from ``seed + epoch``, cut to a whole number of
    *global* batches (``batch_size * accum * world`` samples; the remainder is dropped, so every
    optimizer step sees a full global batch). Global batch j is positions
    ``[j * G, (j + 1) * G)`` of the permutation, and rank r takes every world-th sample of it, so one
    process with batch B and W processes with batch B / W see exactly the same samples per step.

    Items are ``(index, item_seed)``: `item_seed` is derived from (seed, epoch, index) so that a
    `SeededDataset` gives every clip the same augmentation whatever the worker, rank or resume point.
    `set_position(epoch, steps_done)` skips the global batches a resumed run already trained on,
    without decoding them.
    """

    def __init__(self, num_samples: int, *, batch_size: int, accum_steps: int = 1,
                 rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.rank, self.world = num_samples, rank, world_size
        self.micro = batch_size  # per rank, per micro-step
        self.step_size = batch_size * accum_steps * world_size  # samples per optimizer step
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.start_step = 0, 0
        if self.steps_per_epoch == 0:
            raise ValueError(f"the training set has {num_samples} usable videos, fewer than one "
                             f"global batch of {self.step_size} (batch_size x accum x world); "
                             f"lower train.batch_size")

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch."""
        return self.n // self.step_size

    def set_epoch(self, epoch: int) -> None:
        self.set_position(epoch, 0)

    def set_position(self, epoch: int, steps_done: int) -> None:
        """Start `epoch` after its first `steps_done` optimizer steps."""
        self.epoch, self.start_step = epoch, steps_done

    def permutation(self, epoch: int) -> list[int]:
        """The epoch's sample order (before sharding), cut to whole global batches."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        return order[: self.steps_per_epoch * self.step_size]

    def item_seed(self, epoch: int, index: int) -> int:
        """A per-clip seed, a pure function of (seed, epoch, index)."""
        key = f"{self.seed}:{epoch}:{index}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little") & 0x7FFFFFFF

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.permutation(self.epoch)[self.start_step * self.step_size:]
        for i in order[self.rank::self.world]:
            yield i, self.item_seed(self.epoch, i)

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.step_size // self.world
