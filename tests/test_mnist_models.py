"""MNIST generative models: tiny networks, shapes, backward, optimiser ownership, and a CLI fit of every config."""

from __future__ import annotations

import dataclasses

import math
from pathlib import Path

import pytest
import torch
import yaml

from datamodules.batches import ImageBatch
from zoo.media import MediaSample

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*_mnist.yaml"))
TINY = {"channels": 4, "hidden": 16}  # the nets' widths in every test here (net configs, or CLI overrides)


def _net(cls=None, **kw):
    """A tiny net config: ``ImageNetConfig`` (or ``cls``) with 3 latent dimensions and TINY widths, plus ``kw``."""
    from zoo.nn.dcgan import ImageNetConfig

    return (cls or ImageNetConfig)(**{"latent_dim": 3, **TINY, **kw})


def _batch(n: int = 6) -> ImageBatch:
    g = torch.Generator().manual_seed(0)
    return ImageBatch(images=torch.rand(n, 1, 28, 28, generator=g), labels=torch.arange(n) % 10)


def _check_media(sample: MediaSample, n: int) -> None:
    assert sample.images is not None
    assert set(sample.images) >= {"inputs", "samples", "interpolations"}
    for name, images in sample.images.items():
        assert images.dim() == 4 and images.shape[1:] == (1, 28, 28), name
        assert images.min() >= 0 and images.max() <= 1, name
    assert sample.images["inputs"].shape[0] == n


# --- VAE ---------------------------------------------------------------------------------------------------
def test_vae_shapes_backward_and_loss_terms():
    from zoo.losses.image_generative import gaussian_kl
    from zoo.models.vae import VAE

    model = VAE(net=_net())
    batch = _batch()
    loss = model._common_step(batch, "train")
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    mu, logvar = model.encoder(batch.images)
    assert mu.shape == logvar.shape == (6, 3)
    assert model.sample(5).shape == (5, 1, 28, 28)
    assert model.reconstruct(batch.images).shape == (6, 1, 28, 28)
    # The loss is the per-image negative ELBO: the KL enters at its full per-image size, not divided by 784.
    model.eval().double()  # float64: the difference of two ~500-nat losses must resolve a small KL
    batch = ImageBatch(images=batch.images.double(), labels=batch.labels)
    torch.manual_seed(0)
    with torch.no_grad():
        full = model._common_step(batch, "val")
        model.training_config = dataclasses.replace(model.training_config, beta=0.0)
        torch.manual_seed(0)
        recon_only = model._common_step(batch, "val")
        mu, logvar = model.encoder(batch.images)
    torch.testing.assert_close(full - recon_only, gaussian_kl(mu, logvar))


def test_vae_media_sample():
    from zoo.models.vae import VAE

    from zoo.models.vae import VAETrainingConfig

    model = VAE(net=_net(), training=VAETrainingConfig(interpolation_steps=5)).eval()
    sample = model.media_sample(_batch(4))
    _check_media(sample, 4)
    assert sample.images["reconstructions"].shape == (4, 1, 28, 28)
    assert sample.images["interpolations"].shape == (5, 1, 28, 28)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"training": {"likelihood": "laplace"}}, "laplace"),
    ({"training": {"beta": -1.0}}, "-1.0"),
    ({"image_shape": (1, 30, 30)}, "30"),
    ({"net": {"latent_dim": 0}}, "latent_dim must be positive, but got 0"),
])
def test_vae_rejects_bad_values(kwargs, match):
    from zoo.models.vae import VAE

    with pytest.raises(ValueError, match=match):
        VAE(**{"net": TINY, **kwargs})


# --- adversarial models -------------------------------------------------------------------------------------
def _vaegan(**kw):
    from zoo.models.vaegan import VAEGAN, VAEGANTrainingConfig

    return VAEGAN(net=_net(), training=VAEGANTrainingConfig(**kw))


def _ebgan_vae(**kw):
    from zoo.models.vaegan import EBGANVAE, EBGANVAETrainingConfig
    from zoo.nn.dcgan import EBGANVAENetConfig

    return EBGANVAE(net=_net(EBGANVAENetConfig, code_dim=4), training=EBGANVAETrainingConfig(**kw))


def _wae_mmd(**kw):
    from zoo.models.wae import WAEMMD, WAEMMDTrainingConfig

    return WAEMMD(net=_net(), training=WAEMMDTrainingConfig(**kw))


def _wae_gan(**kw):
    from zoo.models.wae import WAE_GAN_TRAINING, WAEGAN
    from zoo.nn.dcgan import WAEGANNetConfig

    return WAEGAN(net=_net(WAEGANNetConfig, adversary_hidden=8, adversary_layers=2),
                  training=dataclasses.replace(WAE_GAN_TRAINING, **kw))


def _wgan(**kw):
    from zoo.models.wgan import WGAN, WGANTrainingConfig
    from zoo.nn.dcgan import CriticNetConfig

    return WGAN(net=_net(CriticNetConfig),
                training=WGANTrainingConfig(**{"n_critic": 1, "warmup_n_critic": 2, "warmup_generator_steps": 1, **kw}))


def _wgan_gp(**kw):
    from zoo.models.wgan import WGAN_GP_NET, WGANGP, WGANGPTrainingConfig

    return WGANGP(net=dataclasses.replace(WGAN_GP_NET, latent_dim=3, **TINY),
                  training=WGANGPTrainingConfig(**{"n_critic": 1, **kw}))


def test_wae_mmd_objective_scales_the_reconstruction_cost_as_the_reference_does():
    from zoo.losses.image_generative import squared_l2

    torch.manual_seed(0)
    model = _wae_mmd(divergence_weight=10.0)
    x = torch.rand(6, 1, 28, 28)
    z = model.encode(x)
    x_hat = model.decode(z)
    torch.manual_seed(1)
    mmd = model.divergence(z)
    torch.manual_seed(1)
    loss = model.cost(x_hat, x) + 10.0 * model.divergence(z)
    assert loss.item() == pytest.approx(0.05 * squared_l2(x_hat, x).item() + 10.0 * mmd.item(), rel=1e-5)
    with pytest.raises(ValueError, match="reconstruction_scale"):
        _wae_mmd(reconstruction_scale=0.0)


# Which sub-networks each optimiser (in configure_optimizers order) may change.
OWNERS = {
    "vaegan": (_vaegan, (("encoder",), ("decoder",), ("discriminator",))),
    "ebgan_vae": (_ebgan_vae, (("encoder",), ("decoder",), ("discriminator",))),
    "wae_gan": (_wae_gan, (("encoder", "decoder"), ("adversary",))),
    "wgan": (_wgan, (("generator",), ("critic",))),
    "wgan_gp": (_wgan_gp, (("generator",), ("critic",))),
}


def _tiny_trainer(tmp_path: Path, steps: int):
    import lightning as L

    # Batches, not max_steps: under manual optimisation Lightning counts every optimiser's step as a global step.
    return L.Trainer(max_epochs=1, limit_train_batches=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                     default_root_dir=str(tmp_path))


def _embedded(tmp_path: Path, batch_size: int = 8):
    from datamodules import MNISTDataModule

    return MNISTDataModule(root=str(tmp_path), source="embedded", batch_size=batch_size)


@pytest.mark.parametrize("name", sorted(OWNERS))
def test_each_optimiser_only_changes_its_own_network(name: str, tmp_path: Path):
    factory, owners = OWNERS[name]
    model = factory()
    configure = model.configure_optimizers
    calls = [0] * len(owners)

    def wrapped_configure():
        optimizers = configure()
        for i, opt in enumerate(optimizers):
            own = {id(p) for sub in owners[i] for p in getattr(model, sub).parameters()}
            original = opt.step

            def step(*args, _i=i, _own=own, _original=original, **kwargs):
                before = {n: p.detach().clone() for n, p in model.named_parameters()}
                out = _original(*args, **kwargs)
                changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
                foreign = {n for n, p in model.named_parameters() if n in changed and id(p) not in _own}
                assert not foreign, f"optimiser {_i} changed {sorted(foreign)[:3]}"
                assert changed, f"optimiser {_i} changed nothing"
                calls[_i] += 1
                return out

            opt.step = step
        return optimizers

    model.configure_optimizers = wrapped_configure
    _tiny_trainer(tmp_path, 3).fit(model, datamodule=_embedded(tmp_path))
    assert all(c > 0 for c in calls), calls


@pytest.mark.parametrize("name", ["vaegan", "ebgan_vae", "wae_mmd", "wae_gan", "wgan", "wgan_gp"])
def test_media_sample_of_every_model(name: str):
    factory = {**{k: v[0] for k, v in OWNERS.items()}, "wae_mmd": _wae_mmd}[name]
    model = factory().eval()
    sample = model.media_sample(_batch(4))
    _check_media(sample, 4)
    if hasattr(model, "reconstruct"):
        assert sample.images["reconstructions"].shape == (4, 1, 28, 28)


def test_vaegan_feature_loss_uses_the_configured_discriminator_layer():
    from zoo.losses.image_generative import feature_gaussian_nll

    model = _vaegan(feature_layer=1).eval()
    x = _batch(4).images
    logits, x_p = torch.randn(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        feats = model.discriminator(torch.cat([x, torch.sigmoid(logits), x_p])).features[1]
        expected = feature_gaussian_nll(feats[4:8], feats[:4])
        similarity, adversarial = model.generator_terms(x, logits, x_p)
        torch.testing.assert_close(similarity, expected)
        # non-saturating GAN term over both fakes: -log D(x~) - log D(x_p), averaged
        fake_logits = model.discriminator(torch.cat([x, torch.sigmoid(logits), x_p])).logits[4:]
        torch.testing.assert_close(adversarial, torch.nn.functional.softplus(-fake_logits).mean())
    assert feats.shape == (12, 8, 7, 7)  # second conv layer: (2 * channels, H/4, W/4)
    with pytest.raises(ValueError, match="5"):
        _vaegan(feature_layer=5)


def test_vaegan_discriminator_weighs_real_and_fake_halves_equally():
    model = _vaegan().eval()
    x = _batch(4).images
    with torch.no_grad():
        terms = model.discriminator_loss(x, torch.rand_like(x), torch.rand_like(x))
        logits = model.discriminator(torch.cat([x, torch.rand_like(x), torch.rand_like(x)])).logits
    torch.testing.assert_close(terms["loss"], terms["real_cost"] + terms["fake_cost"])
    torch.testing.assert_close(terms["real_cost"], torch.nn.functional.softplus(-logits[:4]).mean())


@pytest.mark.parametrize(("real", "fake", "expected"), [
    (0.69, 0.69, (True, True)),   # in equilibrium: both learn
    (0.20, 0.80, (True, True)),   # confident on real, fooled by fakes: mean 0.5, the discriminator keeps learning
    (0.10, 0.20, (False, True)),  # the discriminator wins (mean 0.15 < 0.28): it pauses
    (1.50, 0.90, (True, False)),  # it loses (mean 1.2 > 1.08): the decoder pauses
])
def test_vaegan_equilibrium_balance(real, fake, expected):
    model = _vaegan(equilibrium=0.68, margin=0.4)
    assert model.balance({"real_cost": torch.tensor(real), "fake_cost": torch.tensor(fake)}) == expected
    assert _vaegan(margin=None).balance({"real_cost": torch.tensor(0.0), "fake_cost": torch.tensor(9.0)}) == (True, True)
    with pytest.raises(ValueError, match="0.9"):
        _vaegan(equilibrium=0.68, margin=0.9)


def test_vaegan_gan_term_never_reaches_the_encoder(tmp_path: Path):
    import lightning as L

    def fit(scale: float):
        L.seed_everything(0)
        model = _vaegan(margin=None)
        terms = model.generator_terms

        def scaled_terms(*args):
            similarity, adversarial = terms(*args)
            return similarity, scale * adversarial

        model.generator_terms = scaled_terms
        _tiny_trainer(tmp_path, 1).fit(model, datamodule=_embedded(tmp_path))
        return model

    a, b = fit(1.0), fit(-50.0)
    for p, q in zip(a.encoder.parameters(), b.encoder.parameters()):
        torch.testing.assert_close(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(a.decoder.parameters(), b.decoder.parameters()))


def test_ebgan_discriminator_hinges_fakes_at_the_margin():
    model = _ebgan_vae(margin=1e6).eval()
    x = _batch(4).images
    with torch.no_grad():
        terms = model.discriminator_loss(x, x.flip(0), torch.rand_like(x))
        e_real = model.energy(x).mean()
    # With a huge margin every fake is inside the hinge: loss = E(real) + m - E(fake).
    torch.testing.assert_close(terms["loss"], e_real + 1e6 - terms["energy_fake"])


def test_ebgan_margin_below_the_fake_energies_gives_the_fakes_no_gradient():
    # The failure mode of the old config (m = 10 on a pixel-summed energy, fakes at ~100-250): a dead hinge,
    # so the discriminator only autoencodes real images and never raises the energy of a fake.
    model = _ebgan_vae(margin=1e-6).eval()
    x = _batch(4).images
    fake = torch.rand_like(x).requires_grad_(True)
    terms = model.discriminator_loss(x, fake, fake)
    assert float(terms["energy_fake"]) > 1e-6
    torch.testing.assert_close(terms["loss"], model.energy(x).mean())
    (grad,) = torch.autograd.grad(terms["loss"], fake)
    assert grad.abs().max() == 0


def test_ebgan_config_margin_sits_on_the_summed_energy_scale():
    spec = yaml.safe_load((ROOT / "configs" / "ebgan_vae_mnist.yaml").read_text())["model"]["init_args"]["training"]
    # Energies are summed over 784 pixels (real ~12-60, fakes ~100-250 measured); a margin of order 10 is dead.
    assert 50 <= spec["margin"] <= 784 and spec["gamma"] >= 1


def test_wgan_clips_the_critic_after_every_step_and_keeps_the_schedule_in_its_state(tmp_path: Path):
    model = _wgan(clip_value=0.01, lr=0.5)
    _tiny_trainer(tmp_path, 5).fit(model, datamodule=_embedded(tmp_path))
    for p in model.critic.parameters():
        assert p.abs().max().item() <= 0.01 + 1e-9
    # 5 critic steps: 2 before generator step 0 (warm-up), then 1 each -> generator steps after steps 2, 3, 4, 5.
    assert int(model.generator_steps) == 4
    state = model.state_dict()
    assert "generator_steps" in state and "critic_steps_in_round" in state


def test_wgan_reference_schedule():
    from zoo.models.wgan import WGAN

    model = WGAN(net=TINY)  # a partial net dict: WGAN's own defaults for the rest (64 latent dimensions)
    assert model.net_config.latent_dim == 64 and model.net_config.channels == 4
    assert [model.critic_updates_for(g) for g in (0, 24, 25, 26, 499, 500, 501, 1000)] == [100, 100, 5, 5, 5, 100, 5, 100]
    # 25 warm-up rounds of 100, then 5 each, 100 again at generator step 500; plus the generator steps themselves
    assert model.optimizer_steps_for(30) == 25 * 101 + 5 * 6
    assert model.optimizer_steps_for(501) == 26 * 101 + 475 * 6


def test_wgan_gp_critic_has_no_batch_norm_and_logs_the_penalty():
    from torch import nn

    model = _wgan_gp()
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.critic.modules())
    terms = model.critic_loss(_batch(4).images, torch.rand(4, 1, 28, 28))
    assert set(terms) == {"loss", "wasserstein", "gradient_penalty"}
    torch.testing.assert_close(terms["loss"].detach(), (-terms["wasserstein"] + 10.0 * terms["gradient_penalty"]).detach())
    assert model.critic_updates_for(0) == 1  # no 100-step warm-up for WGAN-GP
    assert model.optimizer_steps_for(10) == 20


def test_wae_mmd_training_step_backward():
    model = _wae_mmd()
    loss = model.training_step(_batch(6), 0)
    loss.backward()
    assert model.encoder(_batch(6).images).shape == (6, 3)
    assert all(p.grad is not None for p in model.parameters())


# --- every config through the real CLI ----------------------------------------------------------------------
def test_configs_exist():
    names = {p.name for p in CONFIGS}
    expected = {"vae", "vaegan", "ebgan_vae", "wae_mmd", "wae_gan", "wgan", "wgan_gp"}
    assert names >= {f"{n}_mnist.yaml" for n in expected}


def _cli_fit(config: Path, tmp_path: Path, *trainer_args: str) -> None:
    from zoo.cli import main

    spec = yaml.safe_load(config.read_text())
    assert spec["data"]["init_args"]["source"] == "real"  # configs default to real MNIST
    init = spec["model"]["init_args"]
    overrides = [f"--model.init_args.net.{k}={v}" for k, v in TINY.items() if k in init["net"]]
    main([
        "fit", "--config", str(config),
        "--data.source", "embedded", "--data.root", str(tmp_path), "--data.batch_size", "8",
        "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
        *trainer_args, *overrides,
    ])


# Drawing 64-image grids with matplotlib costs seconds per model on a shared CPU: the VAE's runs by default,
# the others are marked slow (media_sample of every model is checked above without drawing).
@pytest.mark.parametrize("config", [
    pytest.param(p, id=p.stem, marks=() if p.stem == "vae_mnist" else pytest.mark.slow) for p in CONFIGS
])
def test_config_writes_image_grids(config: Path, tmp_path: Path):
    # fast_dev_run=2 is max_steps=2, which a model with several optimisers reaches inside its first batch,
    # before any validation; so the grids are checked on one short epoch instead.
    _cli_fit(config, tmp_path, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
             "--trainer.limit_val_batches", "1", "--trainer.enable_checkpointing", "false")
    names = {p.name for p in tmp_path.rglob("media_images_*.png")}
    assert {"media_images_samples.png", "media_images_inputs.png", "media_images_interpolations.png"} <= names


# --- reproduce mnist-generative ------------------------------------------------------------------------------
def test_test_nll_is_a_positive_bound_for_the_vae_family_and_none_without_a_posterior():
    from zoo.models.vae import VAE
    from zoo.reproduce_mnist import test_nll

    torch.manual_seed(0)
    images = torch.rand(4, 1, 28, 28)
    vae = VAE(net=_net()).eval()
    nll = test_nll(vae, images, k=8, batch_size=2)
    assert nll is not None and math.isfinite(nll) and 0 < nll < 784 * math.log(2) * 3
    assert test_nll(vae, images, k=8, batch_size=2) == pytest.approx(nll)  # fixed binarisation and draws
    assert test_nll(_wae_mmd().eval(), images, k=8) is None



@pytest.mark.slow  # trains the metric's classifier and two models: ~40 s on a shared 2-core CPU
def test_reproduce_demo_writes_report_on_embedded_digits(tmp_path: Path):
    import json

    from zoo.reproduce_mnist import main

    main(["--preset", "demo", "--out", str(tmp_path), "--models", "vae", "wgan"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["data"] == "sklearn-digits"
    assert 0.0 <= report["test_accuracy"] <= 1.0 and report["sharpness"] > 0
    assert set(report["models"]) == {"vae", "wgan"}
    assert {"frechet", "sharpness", "recon_accuracy", "train_seconds"} <= set(report["models"]["vae"])
    assert "recon_accuracy" not in report["models"]["wgan"]  # a GAN has no reconstructions
    assert 0.0 <= report["models"]["wgan"]["recognisable"] <= 1.0 and report["models"]["wgan"]["test_nll_nats"] is None
    assert report["models"]["vae"]["test_nll_nats"] > 0
    assert "| vae |" in (tmp_path / "report.md").read_text()


def test_converged_training_stops_on_its_validation_figure_and_keeps_the_learning_curve(tmp_path: Path):
    """The converged preset's mechanics at tiny size: early stopping watches MONITOR, the CSV log gives the curve."""
    from zoo.reproduce_common import load_preset
    from zoo.reproduce_mnist import MONITOR, _markdown, _train

    assert load_preset("mnist", "converged")["reproduce"]["early_stopping"]["patience"] >= 1 and MONITOR["vae"] == "val/loss"
    preset = {"trainer": {"max_epochs": 4, "limit_train_batches": 2, "limit_val_batches": 1},
              "model": {"init_args": {"net": {"channels": 4, "hidden": 16}}}, "reproduce": {"early_stopping": {"patience": 1}}}
    torch.manual_seed(0)
    _, steps = _train("vae", tmp_path, preset, None)
    curve = steps["val_curve"]
    assert 1 <= len(curve) <= 4 and all(math.isfinite(c["value"]) for c in curve)  # one validation per epoch
    assert [c["epoch"] for c in curve] == list(range(len(curve)))
    values = [c["value"] for c in curve]
    if steps["stopped_early"]:  # patience 1: the last validation did not beat the best before it
        assert values[-1] >= min(values[:-1])
    else:
        assert len(curve) == 4
    ckpt = max((tmp_path / "vae").rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert any(k.startswith("EarlyStopping") for k in torch.load(ckpt, weights_only=False)["callbacks"])
    report = {"preset": "converged", "data": "sklearn-digits", "num_eval": 1, "test_accuracy": 1.0, "sharpness": 1.0,
              "models": {"vae": {**steps, "frechet": 1.0}}}
    md = _markdown(report)
    assert "| vae | val/loss |" in md and "learning_curves.png" in md


def test_reproduce_writes_grids_of_samples_reconstruction_pairs_and_walks(tmp_path: Path):
    from PIL import Image

    from zoo.reproduce_mnist import _write_grids

    images = _batch(48).images
    assert _write_grids(_vaegan().eval(), images, tmp_path, "vaegan") == [
        "vaegan_samples.png", "vaegan_reconstructions.png", "vaegan_interpolations.png"]
    assert _write_grids(_wgan().eval(), images, tmp_path, "wgan") == ["wgan_samples.png", "wgan_interpolations.png"]
    # 64 images of 28 px in an 8 x 8 grid with 2 px padding, drawn at twice the size
    assert Image.open(tmp_path / "vaegan_reconstructions.png").size == (2 * (8 * 30 + 2),) * 2
