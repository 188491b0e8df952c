"""Callbacks shared by every experiment: media logging on rank zero, prediction writing, resume and compile."""

from callbacks.compile import CompileNetworks
from callbacks.prediction import PredictionWriter
from callbacks.resume import RNGStateCallback
from callbacks.media import AttentionPlotCallback, AudioSampleCallback, ImageGridCallback, MediaCallback, SpectrogramPlotCallback

__all__ = ["AttentionPlotCallback", "CompileNetworks", "AudioSampleCallback", "ImageGridCallback", "MediaCallback", "PredictionWriter", "RNGStateCallback", "SpectrogramPlotCallback"]
