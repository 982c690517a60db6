"""Multi-view evaluation: each video decoded once, all its views batched, fused by an explicit rule.

Protocol (the test views of MCG-NJU/VideoMAE:ssv2.py and kinetics.py, scored as in
engine_for_finetuning.py): every video yields ``views_temporal x views_spatial`` clips, here cut
from ONE decode (`videopeft.data.EvalVideoDataset`); the views go through the model together;
per-view logits are kept (clip-level accuracy) and fused per video (`eval.fusion`: softmax_mean,
logit_mean or max; see `metrics.fuse_views`) for video-level accuracy.

A video that cannot be decoded is recorded in the manifest, counted in ``num_failed`` and left out
of every score. It is never replaced by another video.

Distributed: rank r scores videos r, r + world, ... (no padding, no duplicates); per-video logits are
gathered and re-ordered by video index, so any world size gives the one-process numbers.

Outputs (main rank, in the run folder): ``results.json`` (`RESULT_KEYS`), ``predictions.csv``
(one row per video: the prediction and the top-k classes with their fused probabilities),
``plots/confusion_matrix.png``, ``manifest.json`` and ``run.json`` (see `run_record.py`; a
training run writes its own). An evaluation is a run of its own: its folder must be new (or
hold a run that stopped before its first checkpoint; `videopeft.run_folder`), never a training
run's, and nothing is written before the data and the weights have loaded.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from videopeft import peft
from videopeft.config import RunConfig, method_config, save_config
from videopeft.constants import Fusion
from videopeft.data import Manifest, build_dataset, eval_collate
from videopeft.data.device_augment import normalize_clips, resolve_augment
from videopeft.data.preflight import read_split
from videopeft.errors import AdapterError, CheckpointError, ConfigError, run_error
from videopeft.io import atomic_write_json, atomic_write_text
from videopeft.models import load_pretrained
from videopeft.peft.config import FullConfig, PeftConfig

from . import distributed as dist
from . import metrics as M
from .builder import (Precision, build_backbone, build_model, count_params, gflops_per_view,
                      prepare_run, resolve_num_classes, resolve_output_dir, resolve_precision)
from .checkpoint import FORMAT, load_checkpoint, load_model_state
from .loaders import build_eval_loader
from .report import plot_confusion_matrix
from .run_record import RUN_RECORD, finish_run_record, start_run_record

__all__ = ["ViewScores", "predict", "gather_scores", "score", "evaluate", "evaluate_model",
           "results_record", "load_for_eval", "eval_backbone", "predictions_csv", "RESULT_KEYS",
           "PREDICTION_TOPK"]

_log = logging.getLogger(__name__)

# results.json keys, in order (README.md, "What a run writes")
RESULT_KEYS = ("dataset", "split", "num_videos", "num_failed", "views", "fusion", "clip_top1",
               "clip_top5", "video_top1", "video_top5", "per_class_top1", "params",
               "gflops_per_view", "method", "num_frames", "run_record")


@dataclass
class ViewScores:
    """Per-video outputs of an evaluation pass, ordered by video index.

    index, label: (N,) long; ok: (N,) bool, False = the video could not be decoded;
    logits: (N, V, K) float32, zeros for failed videos.
    """

    index: torch.Tensor
    label: torch.Tensor
    ok: torch.Tensor
    logits: torch.Tensor

    @staticmethod
    def empty(num_views: int, num_classes: int) -> "ViewScores":
        return ViewScores(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                          torch.zeros(0, dtype=torch.bool), torch.zeros(0, num_views, num_classes))


@torch.no_grad()
def predict(model: nn.Module, loader: Any, device: torch.device, precision: Precision, *,
            num_views: int, num_classes: int, progress: bool = False,
            normalize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> ViewScores:
    """Run this rank's videos through `model`: batches (B, V, C, T, H, W) -> logits (B, V, K).
    uint8 views (device mode) are normalised by `normalize` on the device."""
    was_training = model.training
    model.eval()
    parts: list[ViewScores] = []
    batches = loader
    if progress:
        batches = tqdm(loader, desc="eval", leave=False, dynamic_ncols=True)
    try:
        for views, labels, indices, ok in batches:
            b, v = views.shape[:2]
            logits = torch.zeros(b, v, num_classes)
            if ok.any():  # only decodable videos go through the model; failed rows stay zero
                x = views[ok].to(device, non_blocking=True).flatten(0, 1)
                if x.dtype == torch.uint8:
                    x = normalize(x)
                with precision.autocast():
                    out = model(x)
                logits[ok] = out.float().view(-1, v, num_classes).cpu()
            parts.append(ViewScores(indices.long(), labels.long(), ok.bool(), logits))
    finally:
        model.train(was_training)
    if not parts:
        return ViewScores.empty(num_views, num_classes)
    return ViewScores(*(torch.cat([getattr(p, f) for p in parts])
                        for f in ("index", "label", "ok", "logits")))


def gather_scores(local: ViewScores) -> ViewScores:
    """Every rank's ViewScores, concatenated and sorted by video index (no duplicates allowed)."""
    parts = dist.gather_objects(local)
    merged = ViewScores(*(torch.cat([getattr(p, f) for p in parts])
                          for f in ("index", "label", "ok", "logits")))
    order = merged.index.argsort()
    merged = ViewScores(merged.index[order], merged.label[order], merged.ok[order],
                        merged.logits[order])
    if merged.index.unique().numel() != merged.index.numel():
        raise RuntimeError("distributed evaluation scored a video twice; shards overlap")
    return merged


def score(scores: ViewScores, class_names: list[str], fusion: Fusion) -> dict:
    """Metrics over the decodable videos; failed ones are counted, not scored."""
    ok = scores.ok
    summary = M.summarize(scores.logits[ok], scores.label[ok], class_names, fusion)
    summary["num_videos"] = int(scores.index.numel())
    summary["num_failed"] = int((~ok).sum())
    return summary


def evaluate_model(model: nn.Module, dataset: Any, class_names: list[str], *, batch_size: int,
                   workers: int, device: torch.device, precision: Precision, fusion: Fusion,
                   progress: bool = False) -> tuple[dict, ViewScores]:
    """Score `dataset` (an EvalVideoDataset) with `model` on every rank; same result on each."""
    info = dist.get_dist_info()
    loader = build_eval_loader(dataset, batch_size=batch_size, workers=workers, rank=info.rank,
                               world_size=info.world_size, collate_fn=eval_collate,
                               pin_memory=device.type == "cuda")
    d = dataset.cfg
    local = predict(model, loader, device, precision, num_views=dataset.num_views,
                    num_classes=len(class_names), progress=progress,
                    normalize=lambda x: normalize_clips(x, d.mean, d.std))
    scores = gather_scores(local)
    return score(scores, class_names, fusion), scores


def results_record(cfg: RunConfig, summary: dict, *, params: dict[str, int], gflops: float,
                   method: PeftConfig | None = None, training: dict | None = None) -> dict:
    """The results.json object: exactly `RESULT_KEYS`, in order, with plain Python types, and
    after them `training` (how the model was trained: batch, repeated augmentation, ...) when the
    evaluation ends a training run."""
    record = {
        "dataset": cfg.data.layout,
        "split": cfg.eval.split,
        "num_videos": int(summary["num_videos"]),
        "num_failed": int(summary["num_failed"]),
        "views": {"temporal": int(cfg.eval.views_temporal), "spatial": int(cfg.eval.views_spatial)},
        "fusion": cfg.eval.fusion,
        "clip_top1": float(summary["clip_top1"]),
        "clip_top5": float(summary["clip_top5"]),
        "video_top1": float(summary["video_top1"]),
        "video_top5": float(summary["video_top5"]),
        "per_class_top1": {str(k): float(v) for k, v in summary["per_class_top1"].items()},
        "params": {"total": int(params["total"]), "trainable": int(params["trainable"])},
        "gflops_per_view": float(gflops),
        "method": (method if method is not None else cfg.method).to_dict(),
        "num_frames": int(cfg.data.num_frames),
        "run_record": RUN_RECORD,  # run.json beside it: code, libraries, device, command, data
    }
    assert tuple(record) == RESULT_KEYS
    if training is not None:
        record["training"] = training
    return record


PREDICTION_TOPK = 5  # classes per row of predictions.csv (fewer when there are fewer classes)


def predictions_csv(scores: ViewScores, fusion: Fusion, dataset: Any,
                    class_names: list[str], topk: int = PREDICTION_TOPK) -> str:
    """One row per video: index, path, true label, ok flag, then the k best classes with their
    fused probabilities: ``pred, pred_name, score`` (the prediction) and ``pred2, pred2_name,
    score2`` ... (`metrics.fused_probabilities`; empty for a video that failed to decode)."""
    k = min(topk, len(class_names))
    ranks = [""] + [str(r) for r in range(2, k + 1)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "path", "label", "label_name", "ok",
                     *(col for r in ranks for col in (f"pred{r}", f"pred{r}_name", f"score{r}"))])
    ok = scores.ok
    probs = M.fused_probabilities(scores.logits[ok], fusion) if ok.any() else None
    top = iter(zip(*probs.topk(k, dim=-1))) if probs is not None else iter(())
    records = getattr(dataset, "records", None)
    for idx, label, good in zip(scores.index.tolist(), scores.label.tolist(), ok.tolist()):
        path = records[idx].path if records is not None else ""
        row = [idx, path, label, class_names[label], int(good)]
        if good:
            values, classes = next(top)
            for p, c in zip(values.tolist(), classes.tolist()):
                row += [c, class_names[c], f"{p:.6f}"]
        else:
            row += [""] * (3 * k)
        writer.writerow(row)
    return buf.getvalue()


def write_eval_outputs(out_dir: Path, record: dict, summary: dict, scores: ViewScores,
                       dataset: Any, class_names: list[str]) -> None:
    """results.json, predictions.csv and plots/confusion_matrix.png (call on the main rank)."""
    atomic_write_json(out_dir / "results.json", record)
    atomic_write_text(out_dir / "predictions.csv", predictions_csv(scores, record["fusion"],
                                                                   dataset, class_names))
    title = (f"{record['split']}: video top-1 {record['video_top1']:.1f}% "
             f"({record['fusion']}, {record['views']['temporal']}x{record['views']['spatial']} views)")
    plot_confusion_matrix(summary["confusion"], class_names, out_dir / "plots" / "confusion_matrix.png",
                          title=title)


# ----------------------------------------------------------------------------- loading weights

def load_for_eval(cfg: RunConfig, checkpoint: str | os.PathLike, num_classes: int, *,
                  backbone: str | None = None) -> tuple[nn.Module, PeftConfig]:
    """Build the model of `cfg` and put the weights of `checkpoint` in it; returns (model, method).

    `checkpoint` may be:
      * a training checkpoint (``last.pt`` / ``best.pt``): the method applied to the backbone
        training used (`eval_backbone`), then its trainable tensors loaded (every one must match);
      * an adapter file (``.safetensors`` written by `peft.save_adapter`): the method stored in the
        adapter is applied to the backbone it records (`eval_backbone`) and the adapter loaded
        (its backbone fingerprint is checked);
      * any other weight file `load_pretrained` reads (a merged or fully fine-tuned model):
        loaded into the plain backbone, no method applied.
    A checkpoint or adapter trained at other frames or another size than `cfg.data` is
    evaluated as asked, with a warning.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    torch.manual_seed(cfg.seed)  # a randomly initialised backbone is rebuilt as training built it
    if path.suffix == ".safetensors" and _is_adapter(path):
        meta = peft.read_adapter_metadata(path)
        _warn_other_clip(cfg, meta, path)
        model = build_backbone(cfg, num_classes, weights=eval_backbone(cfg, meta.get("model"),
                                                                         path, backbone))
        meta = peft.load_adapter(model, path)  # applies the file's method, checks the backbone
        method = method_config(meta["method"])
        if method.name != cfg.method.name:
            _log.warning("%s: the adapter's method %r is used, not the config's %r", path,
                         method.name, cfg.method.name)
        return model, method
    if _is_train_state(path):
        state = load_checkpoint(path)
        saved = state.get("config") or {}
        _warn_other_clip(cfg, saved.get("data") or {}, path)
        model, _ = build_model(cfg, num_classes,
                               weights=eval_backbone(cfg, saved.get("model"), path, backbone))
        load_model_state(model, state["model"], source=str(path))
        return model, cfg.method
    model = build_backbone(cfg, num_classes, load_weights=False)
    load_pretrained(model, path)
    return model, FullConfig()


def eval_backbone(cfg: RunConfig, trained: dict | None, source: Path,
                  backbone: str | None = None) -> str:
    """The backbone weights to evaluate `source` on, as `infer` picks them: `backbone` (a
    model.pretrained given on eval's command line), else the file training used (`trained`: the
    adapter's or checkpoint's model record; "" = a seeded random backbone), else, when that file
    is gone or nothing is recorded, the config's model.pretrained."""
    if backbone is not None:
        return backbone
    if trained is None or "pretrained" not in trained:
        return cfg.model.pretrained
    recorded = trained["pretrained"] or ""
    if not recorded or Path(recorded).exists():
        if recorded != cfg.model.pretrained:
            _log.info("%s: backbone %s, as in training (the config's model.pretrained is %s)",
                      source, recorded or "(random, seeded)", cfg.model.pretrained or "empty")
        return recorded
    if cfg.model.pretrained:
        _log.warning("%s: trained on backbone %s, which is not there; using the config's "
                     "model.pretrained %s", source, recorded, cfg.model.pretrained)
        return cfg.model.pretrained
    raise CheckpointError(f"{source}: backbone weights {recorded} (recorded in training) not "
                          f"found; pass model.pretrained=PATH")


def _warn_other_clip(cfg: RunConfig, trained: dict, source: Path) -> None:
    """Warn when `cfg.data` asks for other frames or another size than training used."""
    was = (trained.get("num_frames"), trained.get("img_size"))
    now = (cfg.data.num_frames, cfg.data.img_size)
    if None not in was and tuple(was) != now:
        _log.warning("%s was trained on clips of %d frames x %d px and is evaluated at %d x %d "
                     "(data.num_frames, data.img_size): the position table is %sd for the new "
                     "grid and accuracy may differ", source, *was, *now, cfg.model.pos_policy)


def _is_adapter(path: Path) -> bool:
    """Does the .safetensors file carry videopeft adapter metadata?"""
    try:
        peft.read_adapter_metadata(path)
    except AdapterError:
        return False
    return True


def _is_train_state(path: Path) -> bool:
    """Is `path` a videopeft training checkpoint (and not, e.g., an official weight file)?"""
    if path.suffix not in (".pt", ".pth"):
        return False
    try:
        return load_checkpoint(path).get("format") == FORMAT
    except CheckpointError:
        return False


# ----------------------------------------------------------------------------- entry point

def evaluate(cfg: RunConfig, model: nn.Module | None = None,
             checkpoint: str | os.PathLike | None = None, *, output_dir: str | os.PathLike | None = None,
             run_name: str = "eval", progress: bool = True, run_record: bool = True,
             training: dict | None = None, backbone: str | None = None,
             overwrite: bool = False, parent_dir: str | os.PathLike | None = None) -> dict:
    """Evaluate a model on `cfg.eval.split` with `cfg.eval`'s views and fusion; write the outputs.

    Pass either a built `model` (training's final evaluation) or a `checkpoint` path (see
    `load_for_eval`; `backbone` overrides the backbone weights training recorded). Returns the
    results.json dict (on every rank). Raises ConfigError, CheckpointError or AdapterError before
    anything is written when inputs do not fit.

    The outputs go to `output_dir`, else a new ``<parent_dir>/<run_name>-<time>`` (the command
    line's ``RUN/eval-<time>``), else `cfg.output_dir`, else ``runs/<run_name>-<time>``: a new
    folder (`overwrite` moves an occupied one aside), never a training run's. With
    `run_record=False` the caller owns the folder and writes run.json (a training run's final
    evaluation).
    """
    if model is None and checkpoint is None:
        raise ConfigError("evaluate: give a model or checkpoint=PATH")
    owns_group = not torch.distributed.is_initialized()
    info = dist.init_distributed(cfg.device)
    facts, finished = None, False  # run.json while it is being written; the run's outcome
    out_dir: Path | None = None
    try:
        method = cfg.method
        if model is None:  # the data and the weights first: a mistake leaves no folder behind
            classes = read_split(cfg.data, cfg.eval.split, train=False).classes
            model, method = load_for_eval(cfg, checkpoint, resolve_num_classes(cfg, classes),
                                          backbone=backbone)
        out_dir = Path(output_dir) if output_dir else resolve_output_dir(cfg, run_name,
                                                                         parent=parent_dir)
        if run_record:  # a run of its own: a new folder
            prepare_run(out_dir, cfg, {cfg.eval.split: False}, info, overwrite=overwrite,
                        num_classes=cfg.model.num_classes, resumable=False)
        if info.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            if run_record:
                save_config(cfg, out_dir / "config.yaml")
        dist.barrier()
        manifest = Manifest(out_dir / ".manifest_spool")
        facts = start_run_record(out_dir, cfg.data, [cfg.eval.split], info) if run_record \
            else None
        data = dataclasses.replace(cfg.data, augment=resolve_augment(cfg.data.augment,
                                                                     info.device))
        dataset, class_names = build_dataset(data, cfg.eval.split, train=False,
                                             manifest=manifest,
                                             views_temporal=cfg.eval.views_temporal,
                                             views_spatial=cfg.eval.views_spatial,
                                             short_side=cfg.eval.short_side)
        resolve_num_classes(cfg, class_names)
        model = model.to(info.device)
        precision = resolve_precision(cfg.train.amp, info.device)
        params = count_params(model)
        gflops = gflops_per_view(model, cfg.data.num_frames, cfg.data.img_size, info.device)
        summary, scores = evaluate_model(model, dataset, class_names,
                                         batch_size=cfg.eval.batch_size,
                                         workers=cfg.data.workers, device=info.device,
                                         precision=precision, fusion=cfg.eval.fusion,
                                         progress=progress and info.is_main)
        record = results_record(cfg, summary, params=params, gflops=gflops,
                                method=_method_of(model, method), training=training)
        if info.is_main:
            write_eval_outputs(out_dir, record, summary, scores, dataset, class_names)
        failures = write_manifest(manifest, out_dir / "manifest.json")
        if run_record:
            finish_run_record(out_dir, facts, manifest, failures, finished=True)
        finished = True
        _log.info("%s: video top-1 %.2f%%, top-5 %.2f%% over %d videos (%d failed); results in %s",
                  cfg.eval.split, record["video_top1"], record["video_top5"],
                  record["num_videos"], record["num_failed"], out_dir)
        record["output_dir"] = str(out_dir)  # not written to results.json; for callers
        return record
    except BaseException as err:
        if facts is not None and not finished:  # main rank only: no collectives after an error
            finish_run_record(out_dir, facts, manifest, manifest.to_dict(), finished=False,
                              error=run_error(err))
        raise
    finally:
        if owns_group:
            dist.cleanup()


def _method_of(model: nn.Module, fallback: PeftConfig) -> PeftConfig:
    """The method as applied to the model, else `fallback`."""
    return getattr(model, "peft_config", None) or fallback


def write_manifest(manifest: Any, path: Path) -> dict[str, list[dict]]:
    """Merge every rank's failed-video records (and the "warnings" list of suspicious videos),
    write manifest.json on the main rank, and return the merged content (on every rank)."""
    merged: dict[str, dict[str, dict]] = {}
    for part in dist.gather_objects(manifest.to_dict()):
        for split, rows in part.items():
            for row in rows:
                merged.setdefault(split, {}).setdefault(row["path"], row)
    content = {split: [rows[p] for p in sorted(rows)] for split, rows in sorted(merged.items())}
    if dist.is_main():
        atomic_write_json(path, content)
    return content
