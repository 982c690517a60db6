"""The probe behind the demo's stripes design (docs/demo/FINDINGS.md, section 5), kept as a record.

It skips encoding and decoding. It renders stripes videos with the real renderer
(`videopeft.data.synthetic.render`) at 32x32 from `data_seed` 1, never the demo's data. It cuts
segment-sampled clips in memory, masked-pre-trains the demo's tiny VideoMAE, then trains
probes and scores them on a held-out 30 %:

    .venv/bin/python docs/demo/design_probe.py [--mae-steps 1500] [--raw-targets] [--opt sgd --lr 0.05]

One line per cell: method, pre-trained or scratch, frames, final training loss, held-out top-1.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from videopeft import peft
from videopeft.data.synthetic import VideoSpec, render
from videopeft.models.pretrain import create_pretrain_model, tube_mask
from videopeft.models.vit import create_model

SIZE, CLASSES = 32, 4
ARCH = dict(depth=4, embed_dim=96, num_heads=3)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1) * 255


def videos(n: int, seed: int) -> tuple[list[np.ndarray], torch.Tensor]:
    """n stripes videos of 16-40 frames at SIZE x SIZE; video i has class i % CLASSES."""
    rng = np.random.default_rng(seed)
    specs = [VideoSpec(i % CLASSES, int(rng.integers(16, 41)), 12, SIZE, SIZE,
                       int(rng.integers(2**31)), "stripes") for i in range(n)]
    return [render(s) for s in specs], torch.tensor([s.label for s in specs])


def clips(batch: list[np.ndarray], frames: int, rng: np.random.Generator, train: bool
          ) -> torch.Tensor:
    """Segment sampling (random offset in training, the middle otherwise), normalised."""
    out = []
    for v in batch:
        seg = len(v) / frames
        idx = [int(seg * i + (rng.random() * seg if train else seg / 2)) for i in range(frames)]
        out.append(torch.from_numpy(v[idx]).permute(3, 0, 1, 2).float())
    return (torch.stack(out) - MEAN) / STD


def cosine(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * 0.5 * (1 + math.cos(math.pi * s / steps)))


def pretrain(train: list[np.ndarray], steps: int, normalize_target: bool, path: str) -> str:
    """The demo's masked pre-training (mask 0.9, decoder 48 x 1, AdamW 1.5e-3), in memory."""
    torch.manual_seed(0)
    model = create_pretrain_model("videomae_tiny", num_frames=8, img_size=SIZE, patch_size=8,
                                  tubelet_size=2, decoder_dim=48, decoder_depth=1, decoder_heads=3,
                                  normalize_target=normalize_target, **ARCH)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-3, weight_decay=0.05, betas=(0.9, 0.95))
    sched, rng, gen = cosine(opt, steps), np.random.default_rng(0), torch.Generator().manual_seed(0)
    losses, start = [], time.time()
    for _ in range(steps):
        x = clips([train[i] for i in rng.integers(len(train), size=32)], 8, rng, True)
        loss = model(x, tube_mask(32, model.encoder.grid, 0.9, generator=gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    print(f"MAE {steps} steps ({'normalised' if normalize_target else 'raw'} targets): loss "
          f"{np.mean(losses[:20]):.4f} -> {np.mean(losses[-20:]):.4f} ({time.time() - start:.0f} s)")
    torch.save({"model": model.state_dict(), "arch": dict(model.encoder.arch)}, path)
    return path


def probe(train, held_out, method: str, frames: int, backbone: str | None, args) -> None:
    torch.manual_seed(0)
    model = create_model("videomae_tiny", num_classes=CLASSES, num_frames=frames, img_size=SIZE,
                         patch_size=8, pretrained=backbone, **ARCH)
    spec = {"name": method, "head_bn": True}
    if method == "adaptmlp":
        spec.update(bottleneck=16, scale=0.1)
    peft.apply(model, spec)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0) if args.opt == "adamw"
           else torch.optim.SGD(params, lr=args.lr, momentum=0.9))
    sched, rng, losses = cosine(opt, args.steps), np.random.default_rng(1), []
    (vids, labels), (test_vids, test_labels) = train, held_out
    for _ in range(args.steps):
        idx = rng.integers(len(vids), size=32)
        loss = F.cross_entropy(model(clips([vids[i] for i in idx], frames, rng, True)),
                               labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        x = clips(test_vids, frames, np.random.default_rng(2), False)
        pred = torch.cat([model(x[i:i + 64]).argmax(1) for i in range(0, len(x), 64)])
    top1 = 100 * (pred == test_labels).float().mean().item()
    print(f"{method:9s} {'pre-trained' if backbone else 'scratch':11s} {frames:2d} frames: "
          f"loss {np.mean(losses[-30:]):.3f}, held-out top-1 {top1:.1f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--mae-steps", type=int, default=1500)
    parser.add_argument("--raw-targets", action="store_true")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--opt", choices=["adamw", "sgd"], default="adamw")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--cells", default="linear:8,vpt:8,adaptmlp:8,adaptmlp:8:scratch,"
                                           "adaptmlp:2,adaptmlp:16")
    parser.add_argument("--backbone", default="/tmp/design_probe_mae.pth")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(vars(args))
    vids, labels = videos(args.videos, seed=1)
    cut = int(0.7 * args.videos)
    train, held_out = (vids[:cut], labels[:cut]), (vids[cut:], labels[cut:])
    backbone = pretrain(train[0], args.mae_steps, not args.raw_targets, args.backbone)
    for cell in args.cells.split(","):
        method, frames, *scratch = cell.split(":")
        probe(train, held_out, method, int(frames), None if scratch else backbone, args)


if __name__ == "__main__":
    main()
