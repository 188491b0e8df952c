"""WAE reconstruction-cost scaling, before (1.0) and after (0.05, the reference), at equal steps on real MNIST.

    python docs/results/mnist/wae_scaling.py 1200    # -> /tmp/wae/scaled and /tmp/wae/unscaled (report.json, report.md)
"""
import json, shutil, sys, time
from pathlib import Path
from zoo import reproduce_mnist as rm

steps = sys.argv[1]
root = "/work/shared/data"
base = {"trainer": ["--trainer.max_steps", steps, "--trainer.max_epochs", "100", "--trainer.limit_val_batches", "5"],
        "num_eval": 10000, "classifier_epochs": 3, "generator_steps": None}
for tag, scale, models in (("scaled", 0.05, ("vae", "wae_mmd", "wae_gan")), ("unscaled", 1.0, ("wae_mmd", "wae_gan"))):
    rm.PRESETS[tag] = {**base, "model": {"reconstruction_scale": scale}}
    out = Path(f"/tmp/wae/{tag}")
    out.mkdir(parents=True, exist_ok=True)
    if tag == "unscaled":
        shutil.copy("/tmp/wae/scaled/classifier_mnist.pt", out / "classifier_mnist.pt")
    t = time.time()
    rm.run(tag, out, root, models)
    print(tag, "done", time.time() - t, flush=True)
