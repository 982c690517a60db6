"""Where the training loop lets the host wait for the GPU, and where it must not.

A training step queues its kernels and returns; the host runs ahead until something needs a
value from the device (`.item()`, `bool(tensor)`, a copy to the CPU). One such read per step
stalls the queue every step, so the loop has none: the non-finite loss check is recorded on the
device (`LossWatch.observe`) and read where the host waits anyway (log steps, checkpoints, the
end of an epoch); throughput is timed between two explicit `synchronize` calls.
"""
from __future__ import annotations

import torch

__all__ = ["LossWatch", "synchronize"]


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished the queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LossWatch:
    """The first optimizer step whose loss was not finite, noted on the loss's device.

    `observe` queues a few scalar kernels and never waits; `check` reads the note (one host sync)
    and raises FloatingPointError naming that step, so a NaN or inf loss still stops the run with
    its step, at the next check instead of at once.
    """

    def __init__(self, device: torch.device) -> None:
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.epoch = torch.full((), -1, dtype=torch.long, device=device)
        self.loss = torch.zeros((), dtype=torch.float64, device=device)

    def observe(self, loss: torch.Tensor, step: int, epoch: int) -> None:
        """Note `loss` (a 0-d tensor) of optimizer step `step` if it is the first non-finite."""
        first_bad = torch.isfinite(loss).logical_not() & (self.step < 0)
        self.step = torch.where(first_bad, step, self.step)
        self.epoch = torch.where(first_bad, epoch, self.epoch)
        self.loss = torch.where(first_bad, loss.detach().double(), self.loss)

    def check(self) -> None:
        """Raise FloatingPointError if an observed loss was not finite (reads the device)."""
        step = int(self.step)
        if step >= 0:
            raise FloatingPointError(f"loss is {float(self.loss)} at step {step} (epoch "
                                     f"{int(self.epoch) + 1}); lower the lr or check the data")
