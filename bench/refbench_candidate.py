"""The zoo as a candidate for ``../shared/refbench/run_all.py``: the reference cases, built from the zoo's own code.

    python ../shared/refbench/run_all.py --candidate refbench_candidate --candidate-path bench \\
        --rounds 3 --out /tmp/refbench.md --json /tmp/refbench.json

``build_case(bench, case, spec)`` takes the reference's exact ``spec`` (shapes, widths, batch) and returns one timed
iteration, built outside the timed part:

- ``tacotron2.train_step``: ``zoo.models.tacotron.Tacotron2`` at its defaults (NVIDIA's ``hparams.py`` sizes),
  ``training_step`` run outside a Trainer (``self.log`` is a no-op there), backward, the config's gradient clip
  (``configs/tacotron2.yaml``: 1.0) and the module's own Adam. ``tacotron2.inference``: ``net.infer`` decoding
  exactly ``infer_frames`` frames (stop threshold above any float32 probability), pre-net dropout on as in both.
- ``wavenet.train_step``: ``zoo.models.wavenet.WaveNetVocoder`` (MoL) at the spec's widths, ``training_step`` on a
  window of ``T`` samples and their ``T / hop`` frames, backward, clip 1.0 (``configs/wavenet_mol.yaml``), Adam.
  ``wavenet.generate``: the cached ``WaveNet.generate`` of ``T_gen`` samples at batch 1.
- ``pix2pix.train_step``: ``zoo.models.pix2pix.Pix2PixPostnet`` at the spec's widths and depth, one discriminator and
  one generator update with the module's own losses (``discriminator_loss``, ``generator_objective``) and optimisers.
- ``vae``: skipped. AntixK's VanillaVAE is a 5-layer 3 x 64 x 64 network; the zoo's VAE is the MNIST model of its
  paper setting, so timing one against the other would compare two different networks.

Every difference from the reference's configuration is written in the case's config (``differences``).
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import Case, count_params, seed_all  # noqa: E402  (refbench's own helpers, on its path when it imports us)

# training_step runs outside a Trainer, where self.log is a no-op that says so on every call
warnings.filterwarnings("ignore", message=".*self.log.*")


def _training_step(model, batch, clip: float):
    """One step of an automatic-optimisation LightningModule outside a Trainer: zero_grad, its own training_step,
    backward, the config's gradient-norm clip, its own optimiser's step."""
    import torch

    model.train()
    optimizer = model.configure_optimizers()

    def step() -> float:
        optimizer.zero_grad()
        loss = model.training_step(batch, 0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return float(loss.detach())

    return step


# --- Tacotron 2 -----------------------------------------------------------------------------------------------
def _tacotron2(case: str, spec: dict):
    import torch

    from datamodules.batches import SpeechBatch
    from zoo.audio import AudioConfig
    from zoo.models.tacotron import Tacotron2
    from zoo.text import SymbolTable

    seed_all()
    audio = AudioConfig(sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=80)
    model = Tacotron2(audio=audio)
    differences = {
        "vocab_size": f"{model.hparams.vocab_size} symbols (the zoo's character table; NVIDIA's has 148)",
        "loss": "the same three terms (MSE mel, MSE post-net mel, stop BCE), masked by length",
        "adam_eps": "1e-6 (the zoo's Tacotron optimiser; NVIDIA's 1e-8)",
    }
    if case == "train_step":
        b, length, frames = spec["B"], spec["L_text"], spec["T_mel"]
        g = torch.Generator().manual_seed(1)
        batch = SpeechBatch(
            ids=[str(i) for i in range(b)],
            text=torch.randint(1, model.hparams.vocab_size, (b, length), generator=g),
            text_lengths=torch.full((b,), length, dtype=torch.long),
            mel=torch.rand(b, frames, audio.n_mels, generator=g),  # the zoo's normalised [0, 1] mel
            mel_lengths=torch.full((b,), frames, dtype=torch.long),
        )
        step = _training_step(model, batch, clip=1.0)
        cfg = {"model": "zoo.models.tacotron.Tacotron2 (defaults)", "text": [b, length], "mel": [b, frames, audio.n_mels],
               "grad_clip": 1.0, "params": count_params(model), "differences": differences}
        return Case("tacotron2.train_step", step, cfg, warmup=1, repeats=5)
    if case == "inference":
        frames = spec["infer_frames"]
        ids = SymbolTable().encode(spec["sentence"]).ids
        text = torch.tensor(ids, dtype=torch.long)[None, :]
        lengths = torch.tensor([len(ids)])
        model.eval()

        def infer():
            seed_all(7)
            out = model.net.infer(text, lengths, frames, 1.0 - 1e-12)  # float32 probabilities never pass it
            assert int(out.lengths[0]) == frames, out.lengths
            return out.mel_postnet

        cfg = {"model": "zoo.models.tacotron.Tacotron2.net.infer", "input_ids": list(text.shape), "frames": frames,
               "note": "pre-net dropout on at inference (both)", "params": count_params(model), "differences": differences}
        return Case("tacotron2.inference", infer, cfg, unit="frames", units_per_call=frames, warmup=1, repeats=5)
    raise KeyError(case)


# --- WaveNet --------------------------------------------------------------------------------------------------
def _wavenet(case: str, spec: dict):
    import torch

    from datamodules.vocoder import VocoderWindows
    from zoo.audio import AudioConfig
    from zoo.losses.output_distribution import OutputConfig
    from zoo.models.wavenet import WaveNetTrainingConfig, WaveNetVocoder
    from zoo.nn.wavenet import WaveNetConfig

    hop = math.prod(spec["upsample_scales"])
    if spec["out_channels"] % 3:
        raise ValueError(f"out_channels {spec['out_channels']} is not 3 x a number of logistic mixtures")
    seed_all()
    audio = AudioConfig(sample_rate=16000, n_fft=1024, hop_length=hop, win_length=4 * hop, n_mels=spec["cin_channels"])
    net = WaveNetConfig(layers=spec["layers"], stacks=spec["stacks"], residual_channels=spec["residual_channels"],
                        gate_channels=spec["gate_channels"], skip_channels=spec["skip_out_channels"],
                        kernel_size=spec["kernel_size"], upsample_scales=tuple(spec["upsample_scales"]),
                        output=OutputConfig(kind="mol", num_mixtures=spec["out_channels"] // 3))
    model = WaveNetVocoder(audio=audio, net=net,
                           training=WaveNetTrainingConfig(lr=spec["lr"], window_frames=spec["T"] // hop))
    differences = {
        "upsampler": "transposed convolutions (the zoo's configs), no cin_pad; r9y9: ConvInUpsampleNetwork, cin_pad 2",
        "weight_norm": "none (r9y9 wraps every conv in weight norm during training)",
        "log_scale_min": f"{net.output.log_scale_min} (the zoo's configs; r9y9's mol_wavenet.json: -16)",
        "grad_clip": "1.0 (configs/wavenet_mol.yaml; r9y9's train.py: none)",
    }
    g = torch.Generator().manual_seed(1)

    def inputs(b: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.arange(samples).float() / audio.sample_rate
        f0 = 110.0 + 330.0 * torch.rand(b, 1, generator=g)
        wav = (0.5 * torch.sin(2 * math.pi * f0 * t) + 0.05 * torch.randn(b, samples, generator=g)).clamp(-0.99, 0.99)
        return wav, torch.rand(b, samples // hop, audio.n_mels, generator=g)  # (B, S), (B, frames, n_mels)

    if case == "train_step":
        b, samples = spec["B"], spec["T"]
        wav, mel = inputs(b, samples)
        batch = VocoderWindows(wav=wav, mel=mel, mask=torch.ones(b, samples), speakers=None,
                               starts=torch.zeros(b, dtype=torch.long))
        step = _training_step(model, batch, clip=1.0)
        cfg = {"model": "zoo.models.wavenet.WaveNetVocoder (mol)", "wav": [b, samples], "mel": list(mel.shape),
               "receptive_field": model.receptive_field, "params": count_params(model), "differences": differences}
        return Case("wavenet.train_step", step, cfg, warmup=2, repeats=10)
    if case == "generate":
        samples = spec["T_gen"]
        _, mel = inputs(1, samples)
        model.eval()

        def gen():
            return model.net.generate(samples, mel.transpose(1, 2), generators=torch.Generator().manual_seed(7))

        cfg = {"model": "zoo.nn.wavenet.WaveNet.generate (cached)", "samples": samples, "batch": 1,
               "params": count_params(model), "differences": differences}
        return Case("wavenet.generate", gen, cfg, unit="samples", units_per_call=samples, warmup=1, repeats=3)
    raise KeyError(case)


# --- pix2pix --------------------------------------------------------------------------------------------------
def _pix2pix(case: str, spec: dict):
    if case != "train_step":
        raise KeyError(case)
    import torch

    from zoo.losses.gan import discriminator_loss
    from zoo.models.pix2pix import Pix2PixPostnet, Pix2PixTrainingConfig
    from zoo.nn.pix2pix import PatchGANConfig, Pix2PixConfig, UNetConfig

    size = spec["crop"]
    depth = spec["num_downs"] or round(math.log2(size))
    seed_all()
    net = Pix2PixConfig(generator=UNetConfig(depth=depth, channels=spec["ngf"], max_channels=8 * spec["ngf"],
                                             dropout=0.0 if spec["no_dropout"] else 0.5),
                        discriminator=PatchGANConfig(channels=spec["ndf"], layers=spec["n_layers_D"]), norm=spec["norm"])
    training = Pix2PixTrainingConfig(gan_loss="bce", lambda_l1=spec["lambda_L1"], generator_lr=spec["lr"],
                                     discriminator_lr=spec["lr"], betas=(spec["beta1"], 0.999))
    model = Pix2PixPostnet(net=net, training=training)
    model.train()
    opt_g, opt_d = model.configure_optimizers()
    b = spec["B"]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(b, 1, size, size, generator=g) * 2 - 1
    y = torch.tanh(x * 1.5 + 0.1 * torch.randn(b, 1, size, size, generator=g))
    generator, discriminator = model.generator, model.discriminator

    def step() -> float:
        fake = generator(x)
        opt_d.zero_grad()
        loss_d = discriminator_loss(discriminator(x, y), discriminator(x, fake.detach()))
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)  # as the module's toggled optimiser: G's step leaves D's grads alone
        opt_g.zero_grad()
        loss_g, _ = model.generator_objective(x, y, fake)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        return float(loss_g.detach())

    cfg = {"model": "zoo.models.pix2pix.Pix2PixPostnet (generator_objective, discriminator_loss)", "depth": depth,
           "input": [b, 1, size, size], "params_G": count_params(generator), "params_D": count_params(discriminator),
           "differences": {"generator_max_channels": f"{8 * spec['ngf']} (= ngf x 8, as the reference)"}}
    return Case("pix2pix.train_step", step, cfg, warmup=2, repeats=10)


_BUILDERS = {"tacotron2": _tacotron2, "wavenet": _wavenet, "pix2pix": _pix2pix}


def build_case(bench: str, case: str, spec: dict):
    builder = _BUILDERS.get(bench)
    return None if builder is None else builder(case, spec)
