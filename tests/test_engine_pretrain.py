"""VideoMAE pretraining through the training loop: the reconstruction loss falls, and the written
checkpoint loads into a fine-tuning model with every encoder weight found."""
from __future__ import annotations

import torch

from engine_fixtures import tiny_config, tiny_set  # noqa: F401
from videopeft.engine.logging import read_jsonl


def fixed_batch_loss(model, clips: torch.Tensor, ratio: float) -> float:
    """The loss on fixed clips with a fixed tube mask (no randomness), in eval mode.

    A fixed batch makes "the loss falls" a deterministic comparison, not a noisy training curve
    (every training step draws new crops and new masks).
    """
    from videopeft.models.pretrain import tube_mask

    mask = tube_mask(clips.shape[0], model.encoder.grid, ratio,
                     generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        return model(clips, mask).item()


def test_pretraining_lowers_the_loss_and_writes_a_loadable_checkpoint(tiny_set, tmp_path):
    import videopeft
    from videopeft.data import Manifest, build_dataset
    from videopeft.engine.pretrain import PretrainTask, pretrain

    cfg = tiny_config(tiny_set, tmp_path / "run", model={"name": "videomae_tiny", "patch_size": 8},
                      pretrain={"mask_ratio": 0.75, "decoder_dim": 32, "decoder_depth": 1,
                                "decoder_heads": 2},
                      train={"epochs": 8, "lr": 2e-3, "weight_decay": 0.05, "eval_every": 0})
    path = pretrain(cfg)
    assert path == tmp_path / "run" / "checkpoints" / "pretrain.pth" and path.is_file()
    assert len([e for e in read_jsonl(tmp_path / "run" / "log.jsonl") if e["event"] == "train"]) == 24

    # the same clips (eval transform) before and after: the trained model reconstructs better
    dataset, _ = build_dataset(cfg.data, "train", train=False, manifest=Manifest())
    clips = torch.stack([dataset[i][0][0] for i in range(6)])
    torch.manual_seed(cfg.seed)  # the loop builds the model right after this seed
    before = PretrainTask(cfg).build(cfg, [])
    after = PretrainTask(cfg).build(cfg, [])
    after.load_state_dict(torch.load(path, weights_only=True)["model"])
    assert fixed_batch_loss(after, clips, 0.75) < 0.9 * fixed_batch_loss(before, clips, 0.75)

    # official pre-train layout: loads into a fine-tuning VideoViT, only the new head is missing
    finetune = videopeft.create_model("videomae_tiny", num_classes=3, num_frames=4, img_size=32,
                                      patch_size=8)
    report = videopeft.load_pretrained(finetune, path)
    assert report.layout == "official_pretrain"
    assert all(k.startswith(("head.", "fc_norm.")) for k in report.missing), report.missing
    encoder = {k.removeprefix("encoder.") for k in torch.load(path, weights_only=True)["model"]
               if k.startswith("encoder.") and not k.startswith("encoder.norm.")}
    assert encoder <= set(report.loaded)


def test_the_pretrain_task_declares_videomaes_adamw_betas():
    """MCG-NJU/VideoMAE:scripts/*/pretrain.sh use AdamW betas (0.9, 0.95); fine-tuning keeps the
    optimizer's own (0.9, 0.999), and an optimizer without betas gets none."""
    from videopeft.config import load_config
    from videopeft.engine.optim import build_optimizer
    from videopeft.engine.pretrain import PretrainTask
    from videopeft.engine.tasks import ClassificationTask

    def optimizer_of(task_of, opt: str) -> torch.optim.Optimizer:
        cfg = load_config(None, {"model": {"name": "videomae_tiny", "patch_size": 8},
                                 "data": {"num_frames": 2, "img_size": 16},
                                 "pretrain": {"decoder_dim": 16, "decoder_depth": 1,
                                              "decoder_heads": 2},
                                 "train": {"opt": opt}}, check_paths=False)
        task = task_of(cfg)
        return build_optimizer(task.build(cfg, ["a", "b"]), cfg, 1e-3, task.opt_kwargs)

    assert optimizer_of(PretrainTask, "adamw").defaults["betas"] == (0.9, 0.95)
    assert optimizer_of(lambda cfg: ClassificationTask(), "adamw").defaults["betas"] == (0.9, 0.999)
    assert "betas" not in optimizer_of(PretrainTask, "sgd").defaults
