"""Plot docs/results/wavenet/curves.png from the CSVLogger runs of docs/results/wavenet.md.

    python docs/results/wavenet/plot_curves.py RUNS_DIR docs/results/wavenet/curves.png
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

runs_dir, out = sys.argv[1], sys.argv[2]
runs = {"Gaussian": "gaussian", "MoL": "mol", "MoL, seed 7": "mol_seed7",
        "MoL, init_log_scale null (the old init)": "mol_init_default"}
fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
for (label, name), colour in zip(runs.items(), ["C0", "C1", "C2", "C3"]):
    with open(f"{runs_dir}/{name}/version_0/metrics.csv") as f:
        rows = list(csv.DictReader(f))
    if name == "gaussian":
        train = [(int(r["step"]), float(r["train/loss"])) for r in rows if r["train/loss"]]
        ax_train.plot(*zip(*train), colour, label="Gaussian training loss (a density)")
    val = [(int(r["step"]), float(r["val/bits_per_sample"])) for r in rows if r["val/bits_per_sample"]]
    ax_val.plot(*zip(*val), colour + "o-", label=label)
ax_train.axhline(0, color="k", lw=0.5)
ax_train.set(xlabel="step", ylabel="nats / sample", title="Gaussian training loss (logged every 10 steps)")
ax_val.set(xlabel="step", ylabel="validation bits / sample (16-bit bins)", title="Validation NLL, once per 40-step epoch")
ax_train.legend()
ax_val.legend()
fig.tight_layout()
fig.savefig(out, dpi=90)
