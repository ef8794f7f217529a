"""Figures of attributions: images with their heat maps, sequences with a time-by-channel map."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from nas.outputs.report.gradcam import overlay_figure

__all__ = ["SIGNED", "image_figure", "sequence_figure"]

#: methods whose attributions carry a sign (drawn red for evidence for the class, blue against)
SIGNED = frozenset({"integrated_gradients", "lime", "kernel_shap"})


def _scaled(values: np.ndarray, signed: bool) -> tuple[np.ndarray, str, float, float]:
    """Values scaled to ``[-1, 1]`` (signed) or ``[0, 1]`` by their largest magnitude, with a colour map."""
    peak = float(np.abs(values).max())
    scaled = values / peak if peak > 0 else np.zeros_like(values)
    return (scaled, "bwr", -1.0, 1.0) if signed else (scaled, "jet", 0.0, 1.0)


def image_figure(images: np.ndarray, attributions: np.ndarray, titles: Sequence[str], captions: Sequence[str],
                 method: str) -> Figure:
    """The report's two rows (:func:`~nas.outputs.report.gradcam.overlay_figure`): the images ``(N, C, H, W)``
    titled ``titles``, and each image's attribution (summed over channels) over it, titled ``captions``."""
    signed = method in SIGNED
    heat = [_scaled(a.sum(axis=0), signed)[0] for a in attributions]
    return overlay_figure(images, heat, titles, captions, cmap="bwr" if signed else "jet",
                          vmin=-1.0 if signed else 0.0, vmax=1.0, alpha=0.55, interpolation="nearest", title=method)


def sequence_figure(series: np.ndarray, attributions: np.ndarray, titles: Sequence[str], captions: Sequence[str],
                    method: str) -> Figure:
    """Per sequence ``(T, C)``: its channels over time (titled ``titles``) and above them the attribution per time
    step and channel as a map (channels as rows, titled ``captions``)."""
    n = len(series)
    fig = Figure(figsize=(2.4 * n + 0.4, 3.9), dpi=100)
    axes = np.atleast_2d(fig.subplots(2, n, squeeze=False, sharex="col"))
    for i in range(n):
        steps, channels = series[i].shape
        heat, cmap, lo, hi = _scaled(attributions[i].T, method in SIGNED)  # (C, T)
        axes[0, i].imshow(heat, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest",
                          extent=(-0.5, steps - 0.5, channels - 0.5, -0.5))
        axes[0, i].set_title(captions[i], fontsize=8)
        axes[0, i].set_ylabel("channel" if i == 0 else "", fontsize=7)
        for c in range(min(channels, 8)):
            axes[1, i].plot(np.arange(steps), series[i][:, c], linewidth=0.8)
        axes[1, i].set_title(titles[i], fontsize=8)
        axes[1, i].set_xlabel("time step", fontsize=7)
        for ax in axes[:, i]:
            ax.tick_params(labelsize=6)
        axes[0, i].set_yticks(range(channels) if channels <= 8 else [])
    fig.suptitle(method, fontsize=9)
    fig.tight_layout()
    return fig
