"""Training-step benchmark for every experiment config: step time, items/s and peak memory, eager or compiled.

    python bench/train_step.py                       # every config, eager
    python bench/train_step.py --compile             # the same with callbacks.CompileNetworks (torch.compile)
    python bench/train_step.py --configs wavenet_mol vae_mnist --steps 20

Each config runs in its own process (so peak memory is its own) through the zoo CLI on the embedded corpora,
at the sizes of ``SIZES`` below (the configs' own sizes where they are already small; the small sizes of the
demo reproductions for the sequence-to-sequence models). A "step" is one training batch (for the GANs: every
optimiser step that batch makes). The first ``--warmup`` steps (compilation, caches) are timed separately.
Prints one table row per config and the machine; bench/README.md records the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_S2S = ["--data.init_args.batch_size", "8"]
_VC = [*_S2S, "--model.init_args.net.encoder.hidden", "32", "--model.init_args.net.decoder.attention_rnn_dim", "64",
       "--model.init_args.net.decoder.decoder_rnn_dims", "[64]", "--model.init_args.net.decoder.prenet_sizes", "[64, 64]",
       "--model.init_args.net.decoder.attention_dim", "64", "--model.init_args.net.decoder.attention_filters", "8",
       "--model.init_args.net.decoder.attention_kernel_size", "15", "--model.init_args.net.postnet.channels", "0",
       "--data.init_args.audio", json.dumps({"sample_rate": 8000, "n_fft": 512, "win_length": 512, "hop_length": 320,
                                             "n_mels": 40, "fmax": 4000.0})]
_TTS = [*_S2S, "--data.init_args.max_frames", "400", "--model.init_args.net.encoder.embedding_dim", "128",
        "--model.init_args.net.decoder.attention_rnn_dim", "256", "--model.init_args.net.decoder.decoder_rnn_dims", "[256]"]
SIZES: dict[str, list[str]] = {
    "tacotron": [*_TTS, "--model.init_args.net.decoder.reduction_factor", "2"],
    "tacotron2": [*_TTS, "--model.init_args.net.encoder.conv_channels", "128", "--model.init_args.net.encoder.lstm_hidden", "64",
                  "--model.init_args.net.postnet.channels", "128"],
    # the embedded corpus has no dev/eval prompts of the standard ARCTIC split the VC configs use: split it seeded
    "vc_teacher_pretrain": _VC, "vc_teacher": [*_VC, "--data.init_args.split", "seeded"],
    "vc_distill": [*_VC, "--model.init_args.training.teacher_checkpoint", "null", "--model.init_args.training.distill_weight", "0",
                   "--data.init_args.split", "seeded"],
}

# --published: the configs' own sizes, and for the families whose configs are CPU-sized, their published override
PUBLISHED = {"wavenet_mol": "wavenet_published.yaml", "wavenet_gaussian": "wavenet_published.yaml"}


def _one(name: str, steps: int, warmup: int, compile_: bool, data_root: str, accelerator: str = "cpu",
         devices: int = 1, precision: str | None = None, published: bool = False) -> dict | None:
    """Runs in the child process: fit ``warmup + steps`` batches and time them (``published``: the config's own
    sizes, not ``SIZES``). Under DDP every rank runs this; rank 0 returns the row, the others None."""
    import lightning as L
    import torch

    from zoo.cli import ZooCLI

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.items = 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.t = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.times.append(time.perf_counter() - self.t)
            for attr in ("images", "mel", "src_mel", "mel_input", "wav"):  # the batch dataclasses' first tensor
                value = getattr(batch, attr, None)
                if isinstance(value, torch.Tensor):
                    self.items = int(value.shape[0])
                    break

    timer = Timer()
    callbacks = [timer]
    if compile_:
        from callbacks.compile import CompileNetworks

        callbacks.append(CompileNetworks())
    sizes = ["--config", str(ROOT / "configs" / "overrides" / PUBLISHED[name])] if published and name in PUBLISHED else []
    args = ["--config", str(ROOT / "configs" / f"{name}.yaml"), *(sizes if published else SIZES.get(name, [])),
            "--data.init_args.source", "embedded", "--data.init_args.root", data_root,
            "--trainer.accelerator", accelerator, "--trainer.devices", str(devices), "--trainer.logger", "false",
            *(["--trainer.precision", precision] if precision else []),
            *(["--trainer.strategy", "ddp"] if devices > 1 else []),
            "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0",
            "--trainer.limit_val_batches", "0", "--trainer.max_epochs", "1000", "--trainer.max_steps", "-1",
            "--trainer.max_time", "null", "--trainer.limit_train_batches", str(warmup + steps),
            "--trainer.callbacks", "[]", "--trainer.default_root_dir", tempfile.mkdtemp(prefix="zoo-bench-run-")]
    cli = ZooCLI(args=args, run=False, trainer_defaults={"callbacks": callbacks})
    cli.trainer.fit_loop.max_epochs = 1
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if cli.trainer.global_rank != 0:
        return None
    timed = timer.times[warmup:]
    step = statistics.median(timed)
    params = sum(p.numel() for p in cli.model.parameters())
    return {"config": name, "params_M": round(params / 1e6, 3), "batch": timer.items, "warmup_s": round(sum(timer.times[:warmup]), 2),
            "step_ms": round(1000 * step, 1), "items_per_s": round(timer.items / step, 1),
            "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_cuda_MiB": round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None,
            "accelerator": accelerator, "devices": devices, "precision": precision or "32-true"}


def measure(name: str, steps: int, warmup: int, data_root: str, options: list[str] = ()) -> dict:
    """One config in its own process (``options``: this script's flags, e.g. ``--accelerator gpu``) -> its row, or
    ``{"config": name, "error": last stderr line}``."""
    cmd = [sys.executable, __file__, "--one", name, "--steps", str(steps), "--warmup", str(warmup),
           "--data-root", data_root, *options]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"config": name, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)}
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=sorted(p.stem for p in (ROOT / "configs").glob("*.yaml")))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks (callbacks.CompileNetworks)")
    parser.add_argument("--data-root", default=None, help="embedded corpora folder (default: a temporary one)")
    parser.add_argument("--accelerator", default="cpu", help="the Trainer's accelerator (bench/gpu_check.py: gpu)")
    parser.add_argument("--devices", type=int, default=1, help="> 1: DDP over that many devices")
    parser.add_argument("--precision", default=None, help="the Trainer's precision, e.g. bf16-mixed")
    parser.add_argument("--published", action="store_true", help="the configs' own (published) sizes, not SIZES")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data_root = args.data_root or tempfile.mkdtemp(prefix="zoo-bench-")
    if args.one:
        row = _one(args.one, args.steps, args.warmup, args.compile, data_root, args.accelerator, args.devices,
                   args.precision, args.published)
        if row is not None:
            print("RESULT " + json.dumps(row), flush=True)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
          f"{os.environ.get('OMP_NUM_THREADS', 'default')}, compile={args.compile}")
    print("| config | params (M) | batch | warm-up s | step ms | items/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.configs:
        r = measure(name, args.steps, args.warmup, data_root, ["--compile"] if args.compile else [])
        if "error" in r:
            print(f"| {name} | failed: {r['error']} |")
            continue
        print(f"| {name} | {r['params_M']} | {r['batch']} | {r['warmup_s']} | {r['step_ms']} | {r['items_per_s']} | {r['peak_rss_MiB']} |",
              flush=True)


if __name__ == "__main__":
    main()
