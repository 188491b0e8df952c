"""Spectrogram post-net GAN: pix2pix (Isola et al. 2017) sharpening blurry mel spectrograms.

A UNet generator maps a blurry mel spectrogram (one channel, mel bins × frames) to a sharp one, trained on
crops with L_G = λ_L1·L1(G(x), y) + λ_adv·adversarial and a PatchGAN discriminator on (x, ·) pairs; it runs
fully convolutionally on whole utterances for validation and prediction.

Manual optimisation with one optimiser per network: on training batch k (``batches_seen``, saved in the
checkpoint, so a resumed run keeps the schedule) the discriminator updates when k % discriminator_every == 0
and the generator when k % generator_every == 0. The schedule depends only on the counter, so every rank
steps the same optimisers on every batch.

Inference mode, a documented departure from the paper: validation, test, prediction and ``polish`` run in
``eval()`` — batch norm with its running statistics, dropout off — so a given input always gives the same output.
Isola et al. (2017, §3.2 and §6.1) keep dropout on at test time and normalise with the test batch's own
statistics (batch size 1, i.e. instance norm). Here whole utterances of different lengths are polished in padded
batches, where test-batch statistics would mix utterances with each other and with their padding; ``norm:
instance`` gives the paper's per-utterance statistics at test time, and the dropout noise of the paper's test
mode is left out because the post-net is judged by L1 and global variance against one target, not by sample
diversity (which the paper itself found dropout barely provides).
"""

from __future__ import annotations

import lightning as L
import torch

from datamodules.postnet import PairedMelBatch
from zoo.audio import AudioConfig, griffin_lim_wav
from zoo.config import block_config, check_non_negative, check_positive, config_from_value, freeze_sequences
from zoo.losses.gan import GANLoss, discriminator_loss, generator_adversarial_loss
from zoo.losses.spectral import global_variance_loss
from zoo.media import MediaSample, Prediction
from zoo.metrics.spectral import global_variance_ratio, masked_l1
from zoo.models.adversarial import backward_and_step
from zoo.nn.pix2pix import (
    PatchGANDiscriminator,
    Pix2PixConfig,
    UNetGenerator,
    check_unet_size,
    init_pix2pix_weights,
)


@block_config
class Pix2PixTrainingConfig:
    """How the post-net GAN trains: ``gan_loss`` "bce" (pix2pix) or "lsgan"; L_G = ``lambda_l1`` L1 +
    ``lambda_adversarial`` adversarial + ``lambda_gv`` global-variance loss (0: off, not in pix2pix); Adam at
    ``generator_lr`` / ``discriminator_lr`` with ``betas``; the generator steps on every ``generator_every``-th
    training batch, the discriminator on every ``discriminator_every``-th."""

    gan_loss: GANLoss = "bce"
    lambda_l1: float = 100.0
    lambda_adversarial: float = 1.0
    lambda_gv: float = 0.0
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    generator_every: int = 1
    discriminator_every: int = 1

    def __post_init__(self) -> None:
        freeze_sequences(self)
        check_non_negative("Pix2PixTrainingConfig", lambda_l1=self.lambda_l1, lambda_adversarial=self.lambda_adversarial,
                           lambda_gv=self.lambda_gv)
        check_positive("Pix2PixTrainingConfig", generator_lr=self.generator_lr, discriminator_lr=self.discriminator_lr,
                       generator_every=self.generator_every, discriminator_every=self.discriminator_every)
        if self.gan_loss not in ("bce", "lsgan"):
            raise ValueError(f"Pix2PixTrainingConfig.gan_loss must be 'bce' or 'lsgan', but got {self.gan_loss!r}")


class Pix2PixPostnet(L.LightningModule):
    """pix2pix post-net for mel spectrograms (batches: ``datamodules.postnet.PairedMelBatch``, mels in [0, 1]).

    Inside the model mels are mapped to [−1, 1] by x' = 2(x − low)/(high − low) − 1, where (low, high) is the
    DataModule's ``mel_range()`` of the training data, taken at the first ``setup`` and stored as buffers (so
    the checkpoint carries it and a restored model uses the scale it was trained with). ``net`` defaults to the
    published pix2pix sizes (ngf = ndf = 64, 512 channels at most, 70×70 PatchGAN) with a depth-6 UNet, which takes
    a 64×64 crop down to 1×1; ``training`` to λ_L1 = 100, Adam 2e-4, β = (0.5, 0.999). ``net.generator.residual``
    makes the generator x + UNet(x), starting as the identity (``zoo.nn.pix2pix.UNetGenerator``): for inputs that
    are already an L1-trained model's estimate of the target, such as a voice-conversion model's outputs.
    """

    def __init__(
        self,
        *,
        audio: AudioConfig = AudioConfig(),
        net: Pix2PixConfig = Pix2PixConfig(),
        training: Pix2PixTrainingConfig = Pix2PixTrainingConfig(),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the CLI records its parsed config here instead: never read configs back from it
        self.audio = config_from_value(AudioConfig, audio, "audio")
        self.net_config = net = config_from_value(Pix2PixConfig, net, "net")
        self.training_config = config_from_value(Pix2PixTrainingConfig, training, "training")
        self.automatic_optimization = False
        self.generator = UNetGenerator(net.generator, net.norm)
        self.discriminator = PatchGANDiscriminator(net.discriminator, net.norm)
        init_pix2pix_weights(self.generator)
        init_pix2pix_weights(self.discriminator)
        if net.generator.residual:
            self.generator.zero_output_layer()  # starts as the identity: L1 starts at the input's
        # The [0, 1] -> [-1, 1] scale and the update schedule live in the state dict, hence in checkpoints.
        self.register_buffer("mel_low", torch.tensor(0.0))
        self.register_buffer("mel_high", torch.tensor(1.0))
        self.register_buffer("scale_fitted", torch.tensor(False))
        self.register_buffer("batches_seen", torch.tensor(0, dtype=torch.long))

    # --- normalisation ------------------------------------------------------------------------------------------
    def set_mel_range(self, low: float, high: float) -> None:
        if not high > low:
            raise ValueError(f"the mel range needs high > low, but got ({low}, {high})")
        self.mel_low.fill_(low)
        self.mel_high.fill_(high)
        self.scale_fitted.fill_(True)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        crop_size = getattr(datamodule, "crop_size", None)
        if stage == "fit" and crop_size is not None:
            check_unet_size(self.net_config.generator.depth, tuple(crop_size))  # clear error before any step
        # Runs before a checkpoint is restored, so a resumed or loaded model ends up with its own saved scale.
        if not bool(self.scale_fitted):
            if datamodule is None or not hasattr(datamodule, "mel_range"):
                raise ValueError("the mel scale is not set: train with a DataModule that has mel_range() "
                                 "(datamodules.postnet.PairedMelDataModule), load a checkpoint, or call set_mel_range()")
            self.set_mel_range(*datamodule.mel_range())

    def to_model_scale(self, mel: torch.Tensor) -> torch.Tensor:
        return 2.0 * (mel - self.mel_low) / (self.mel_high - self.mel_low) - 1.0

    def to_data_scale(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1.0) * 0.5 * (self.mel_high - self.mel_low) + self.mel_low

    def _image(self, mel: torch.Tensor) -> torch.Tensor:
        return self.to_model_scale(mel).transpose(1, 2).unsqueeze(1)  # (B, T, F) -> (B, 1, F, T)

    # --- inference ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def polish(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Sharpen whole utterances: (B, T, n_mels) in [0, 1] and (B,) lengths -> (B, T, n_mels) in [0, 1], padded
        frames set to 0. Any T and n_mels: padded to multiples of 2**depth with silence and cropped back."""
        silence = float(self.to_model_scale(torch.zeros((), device=mel.device)))
        y = self.generator.forward_any_size(self._image(mel), pad_value=silence)  # (B, 1, F, T)
        out = self.to_data_scale(y.squeeze(1).transpose(1, 2)).clamp(0.0, 1.0)  # (B, T, F)
        valid = torch.arange(mel.shape[1], device=mel.device)[None, :] < lengths[:, None]  # (B, T)
        return out * valid.unsqueeze(-1)

    # --- training -----------------------------------------------------------------------------------------------
    def training_step(self, batch: PairedMelBatch, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x, y = self._image(batch.mel_input), self._image(batch.mel_target)  # (B, 1, F, T) each
        k = int(self.batches_seen)
        hp = self.training_config
        update_d = k % hp.discriminator_every == 0
        update_g = k % hp.generator_every == 0
        kind = hp.gan_loss
        logs: dict[str, torch.Tensor] = {}

        # One generator pass serves both updates (as in pix2pix): detached for D, with its graph for G.
        with torch.set_grad_enabled(update_g):
            fake = self.generator(x)  # (B, 1, F, T)

        if update_d:
            with self.toggled_optimizer(opt_d):
                real_logits = self.discriminator(x, y)  # (B, 1, H', W') patch logits
                fake_logits = self.discriminator(x, fake.detach())
                loss_d = discriminator_loss(real_logits, fake_logits, kind)
                backward_and_step(self, opt_d, loss_d)
            logs |= {"train/discriminator_loss": loss_d,
                     "train/d_real": real_logits.detach().mean(), "train/d_fake": fake_logits.detach().mean()}

        if update_g:
            with self.toggled_optimizer(opt_g):
                loss_g, terms = self.generator_objective(x, y, fake)
                backward_and_step(self, opt_g, loss_g)
            logs |= {f"train/{name}": value for name, value in terms.items()}

        self.batches_seen += 1
        self.log_dict(logs, prog_bar=False, batch_size=x.shape[0])

    def generator_objective(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L_G = λ_L1·L1(G(x), y) + λ_adv·adversarial (+ λ_GV·GV loss) on (B, 1, F, T) crops of the model's scale
        -> (loss, detached terms for logging). Needs no Trainer (bench/refbench_candidate.py times it as is)."""
        hp = self.training_config
        l1 = (fake - y).abs().mean()  # on the [-1, 1] scale, as in pix2pix
        adversarial = generator_adversarial_loss(self.discriminator(x, fake), hp.gan_loss)
        loss = hp.lambda_l1 * l1 + hp.lambda_adversarial * adversarial
        terms = {"l1": l1.detach(), "generator_adversarial": adversarial.detach()}
        if hp.lambda_gv > 0:
            gv = global_variance_loss(fake, y)
            loss = loss + hp.lambda_gv * gv
            terms["gv_loss"] = gv.detach()
        terms["generator_loss"] = loss.detach()
        return loss, terms

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.training_config
        # Order matters: training_step unpacks (generator, discriminator). fused: Adam's update as one kernel per
        # step, the same arithmetic; on CPU the per-parameter foreach ops were 17 % of a D + G step (bench/README.md).
        return [torch.optim.Adam(self.generator.parameters(), lr=hp.generator_lr, betas=hp.betas, fused=True),
                torch.optim.Adam(self.discriminator.parameters(), lr=hp.discriminator_lr, betas=hp.betas, fused=True)]

    # --- evaluation on whole utterances -----------------------------------------------------------------------
    def _eval_step(self, batch: PairedMelBatch, stage: str) -> None:
        lengths = batch.mel_lengths
        out = self.polish(batch.mel_input, lengths)
        terms = {
            "l1_input": masked_l1(batch.mel_input, batch.mel_target, lengths),
            "l1_output": masked_l1(out, batch.mel_target, lengths),
            "gv_ratio_input": global_variance_ratio(batch.mel_input, batch.mel_target, lengths),
            "gv_ratio_output": global_variance_ratio(out, batch.mel_target, lengths),
            "gv_ratio_target": global_variance_ratio(batch.mel_target, batch.mel_target, lengths),
        }
        self.log_dict({f"{stage}/{k}": v.mean() for k, v in terms.items()}, sync_dist=True,
                      batch_size=len(batch.ids), prog_bar=False)
        self.log(f"{stage}/loss", terms["l1_output"].mean(), sync_dist=True, batch_size=len(batch.ids), prog_bar=True)

    def validation_step(self, batch: PairedMelBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: PairedMelBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: PairedMelBatch, batch_idx: int) -> list[Prediction]:
        """Polish every utterance whole; each ``Prediction`` carries the polished mel (T, n_mels) in [0, 1], its
        Griffin-Lim wav and the truth, which ``callbacks.prediction.PredictionWriter`` writes as ``mels/<id>.npy``,
        ``<id>.wav``, ``targets/<id>.npy`` and an ``index.tsv`` of (polished, truth) pairs in the ``pairs_dir``
        format, so a polished set can feed another stage."""
        out = self.polish(batch.mel_input, batch.mel_lengths)
        predictions = []
        for i, utt_id in enumerate(batch.ids):
            t = int(batch.mel_lengths[i])
            mel = out[i, :t].float().cpu()  # (T, n_mels)
            predictions.append(Prediction(id=utt_id, wav=griffin_lim_wav(mel, self.audio),
                                          sample_rate=self.audio.sample_rate, mel=mel,
                                          target_mel=batch.mel_target[i, :t].float().cpu()))
        return predictions

    @torch.no_grad()
    def media_sample(self, batch: PairedMelBatch) -> MediaSample:
        return MediaSample(
            ids=list(batch.ids),
            mel_input=batch.mel_input,
            mel_pred=self.polish(batch.mel_input, batch.mel_lengths),
            mel_target=batch.mel_target,
            mel_lengths=batch.mel_lengths,
            audio_config=self.audio,
        )
