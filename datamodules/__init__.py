"""The zoo's shared DataModules: LJSpeech, CMU ARCTIC and MNIST, each with an embedded offline corpus."""

from datamodules.batches import ImageBatch, ParallelBatch, SpeechBatch
from datamodules.cmu_arctic import CMUArcticDataModule
from datamodules.ljspeech import LJSpeechDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.postnet import PairedMelDataModule
from datamodules.world_vocoder import WorldVocoderDataModule

__all__ = ["CMUArcticDataModule", "ImageBatch", "LJSpeechDataModule", "MNISTDataModule", "ParallelBatch", "SpeechBatch",
           "WorldVocoderDataModule"]
