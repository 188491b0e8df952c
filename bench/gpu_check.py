"""One GPU check: a short bf16 fit of every family at published sizes, DDP on every visible GPU, and cached WaveNet
generation's real-time factor at batch 1 and 16.

    python bench/gpu_check.py --out OUT                 # on a CUDA machine; writes OUT/gpu_check.{md,json}
    python bench/gpu_check.py --out OUT --cpu-smoke     # the same code path on CPU at tiny sizes (the test runs this)

Without a CUDA device (and without ``--cpu-smoke``) it writes that it skipped and exits 0. Each fit runs in its own
process through ``bench/train_step.py`` (the zoo CLI on the embedded corpora): the configs' own sizes, and for the
WaveNet configs (CPU-sized) ``configs/overrides/wavenet_published.yaml``; ``--steps`` timed batches after
``--warmup``; step time, items/s and peak CUDA memory. DDP: the first config again on all visible GPUs. Generation:
``zoo.nn.wavenet.WaveNet.generate`` at the published WaveNet's sizes, ``--samples`` samples per utterance,
real-time factor = seconds / seconds of audio produced (per utterance: batch 16 makes 16 utterances at once).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from train_step import measure  # noqa: E402

FAMILIES = ["tacotron", "tacotron2", "vc_teacher_pretrain", "postnet_pix2pix", "wavenet_mol", "vae_mnist",
            "vaegan_mnist", "ebgan_vae_mnist", "wae_mmd_mnist", "wae_gan_mnist", "wgan_mnist", "wgan_gp_mnist"]


def _wavenet_sizes(published: bool) -> dict:
    """The published WaveNet's sizes (configs/wavenet_mol.yaml + overrides/wavenet_published.yaml), or tiny ones."""
    spec = yaml.safe_load((ROOT / "configs" / "wavenet_mol.yaml").read_text())["model"]["init_args"]["net"]
    if published:
        published_net = yaml.safe_load((ROOT / "configs" / "overrides" / "wavenet_published.yaml").read_text())
        published_net = published_net["model"]["init_args"]["net"]
        spec |= {**published_net, "output": {**spec["output"], **published_net.get("output", {})}}
    else:
        spec |= {"layers": 4, "stacks": 2, "residual_channels": 8, "gate_channels": 16, "skip_channels": 8}
    return spec


def generation_rtf(device: str, batch: int, samples: int, published: bool) -> dict:
    """Cached generation of ``samples`` samples for ``batch`` utterances at once -> a row with the real-time factor."""
    from zoo.audio import AudioConfig
    from zoo.config import config_from_value
    from zoo.models.wavenet import WaveNetVocoder
    from zoo.nn.wavenet import WaveNetConfig

    net = config_from_value(WaveNetConfig, _wavenet_sizes(published), "configs/wavenet_mol.yaml model.init_args.net")
    audio = AudioConfig(sample_rate=22050)  # the LJSpeech front end of configs/wavenet_mol.yaml (hop 256)
    torch.manual_seed(0)
    model = WaveNetVocoder(audio=audio, net=net).to(device).eval()
    frames = -(-samples // audio.hop_length)
    mel = torch.rand(batch, audio.n_mels, frames, device=device)
    generate = lambda n: model.net.generate(n, mel)  # noqa: E731
    generate(min(samples, 64))  # warm-up: kernels, caches
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    wav = generate(samples)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if not torch.isfinite(wav).all():
        raise RuntimeError("generation produced non-finite samples")
    return {"batch": batch, "samples": samples, "seconds": round(seconds, 3),
            "samples_per_s": round(batch * samples / seconds, 1),
            "real_time_factor": round(seconds / (samples / audio.sample_rate), 3),
            "layers": net.layers, "residual_channels": net.residual_channels}


def _markdown(report: dict) -> str:
    lines = [f"# GPU check ({report['device']})", "", f"Command: `{report['command']}`", "",
             "| config | devices | precision | params (M) | batch | step ms | items/s | peak CUDA MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in report["fits"]:
        if "error" in r:
            lines.append(f"| {r['config']} | {r.get('devices', 1)} | | | | failed: {r['error']} | | |")
        else:
            lines.append(f"| {r['config']} | {r['devices']} | {r['precision']} | {r['params_M']} | {r['batch']} | "
                         f"{r['step_ms']} | {r['items_per_s']} | {r['peak_cuda_MiB']} |")
    lines += ["", "Cached WaveNet generation:", "", "| batch | samples | seconds | samples/s | real-time factor |",
              "|---|---|---|---|---|"]
    lines += [f"| {g['batch']} | {g['samples']} | {g['seconds']} | {g['samples_per_s']} | {g['real_time_factor']} |"
              for g in report["generation"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--configs", nargs="+", default=FAMILIES)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--samples", type=int, default=22050, help="samples per utterance generated (default: 1 s)")
    parser.add_argument("--cpu-smoke", action="store_true", help="run on CPU at the benchmark's small sizes, fp32")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python bench/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        message = "no CUDA device: the GPU check was skipped"
        (args.out / "gpu_check.md").write_text(message + "\n")
        (args.out / "gpu_check.json").write_text(json.dumps({"skipped": message}))
        print(message)
        return 0
    device = "cuda" if cuda and not args.cpu_smoke else "cpu"
    options = (["--accelerator", "gpu", "--precision", "bf16-mixed", "--published"] if device == "cuda"
               else ["--accelerator", "cpu"])
    data_root = tempfile.mkdtemp(prefix="zoo-gpu-check-")
    fits = []
    for name in args.configs:
        fits.append(measure(name, args.steps, args.warmup, data_root, options))
        print(json.dumps(fits[-1]), flush=True)
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    if gpus > 1:
        fits.append(measure(args.configs[0], args.steps, args.warmup, data_root, [*options, "--devices", str(gpus)]))
        print(json.dumps(fits[-1]), flush=True)
    generation = [generation_rtf(device, batch, args.samples, published=device == "cuda") for batch in (1, 16)]
    report = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU smoke ({platform.machine()})",
              "command": command, "torch": torch.__version__, "fits": fits, "generation": generation,
              "ddp": "on all visible GPUs" if gpus > 1 else "one device: no DDP row"}
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    (args.out / "gpu_check.md").write_text(_markdown(report))
    print(_markdown(report))
    return 1 if any("error" in r for r in fits) else 0


if __name__ == "__main__":
    sys.exit(main())
