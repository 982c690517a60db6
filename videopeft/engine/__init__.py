"""The engine: the training recipe, evaluation, distributed setup, checkpoints, metrics, logs.

    from videopeft.engine.train import train          # results = train(cfg) -> results.json dict
    from videopeft.engine.evaluate import evaluate    # evaluate(cfg, checkpoint="RUN/checkpoints/best.pt")
    from videopeft.engine.pretrain import pretrain    # pretrain(cfg) -> RUN/checkpoints/pretrain.pth

Modules: train (the `Recipe`: setup -> resume -> train -> finish), tasks (what a run optimises:
model, loss, export), optim (parameter groups, layer decay, schedule), pretrain (the
masked-autoencoder task), evaluate (multi-view protocol, results.json), distributed (torchrun
env, collectives, resumable sampler), hostsync (where the step loop may wait for the GPU),
loaders, checkpoint (atomic full-state files, resume), metrics (fusion, top-k), logging (JSONL +
TensorBoard; torch-free), report (plots, tables), builder (config -> model/precision/output
folder), machine (CPU/GPU names, software versions), run_record (run.json, the reproducibility
record), infer (adapter -> predictions, LoRA merge), export (Hugging Face / peft), cli (one-line
errors for the commands; torch-free). The `videopeft` command is `videopeft.cli`; studies built
on the engine (frame study, demo) are in `videopeft.studies`.
Submodules are imported on use, so `videopeft.engine.metrics` does not pull in the loop.
"""
