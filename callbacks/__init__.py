"""Callbacks shared by every experiment: media logging on rank zero."""

from callbacks.compile import CompileNetworks
from callbacks.resume import RNGStateCallback
from callbacks.media import AttentionPlotCallback, AudioSampleCallback, ImageGridCallback, MediaCallback, SpectrogramPlotCallback

__all__ = ["AttentionPlotCallback", "CompileNetworks", "AudioSampleCallback", "ImageGridCallback", "MediaCallback", "RNGStateCallback", "SpectrogramPlotCallback"]
