"""Designing design spaces (Radosavovic et al., CVPR 2020) at Fashion-MNIST scale.

The paper's method, in three parts a lesson can run:

1. **Sample** networks from a design space: :func:`sample` draws :class:`AnyNetConfig` s (per-stage
   depth, width, bottleneck ratio and group width) from a :class:`Space`, keeping only those
   whose cost lies in a FLOPs band (the paper: about 400 MFLOPs at 224x224), so that spaces are
   compared at equal cost.
2. **Train each briefly** (:func:`train_population`): the paper trains 500 networks per space for
   10 epochs; a 2-core CPU affords a dozen or two for a few thousand images.
3. **Compare spaces by their error EDF** (:func:`edf`, :func:`show_edfs`): F(e), the fraction of
   the sampled networks whose error is below e. A space whose curve lies further left and higher
   holds more good networks. With n networks the curve is noisy: by the Dvoretzky-Kiefer-Wolfowitz
   inequality the true curve lies within :func:`dkw_band` (n) of the measured one, everywhere,
   with 95% probability (0.39 for n = 12, 0.06 for the paper's n = 500).

Our AnyNetX has three stages, not four (28x28 images halve to 14, 7 and 4). ``ANYNET_A`` leaves
every stage free; ``ANYNET_E`` shares the bottleneck ratio and group width across stages and
lets widths and depths only grow, the paper's constraints B to E. :func:`show_width_rule` draws
RegNet's quantised linear width rule (:func:`d2lcnn.models.regnet.regnet_widths`).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch
from torch import nn

from .models.regnet import anynet, compatible, regnet_widths


@dataclass(frozen=True)
class AnyNetConfig:
    """One network of the AnyNetX space: per-stage depths, widths, bottleneck ratios, group widths."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    bottlenecks: tuple[int, ...]
    group_widths: tuple[int, ...]

    def build(self, stem_channels: int = 16, in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
        """The network: a stride-1 3x3 stem of ``stem_channels``, the stages, pooling, a classifier."""
        return anynet(self.depths, self.widths, self.bottlenecks, self.group_widths, stem_channels=stem_channels,
                      stem_stride=1, in_channels=in_channels, num_classes=num_classes)

    def flops(self, size: int = 28, stem_channels: int = 16, num_classes: int = 10) -> int:
        """FLOPs (a multiply-add counts two) for one ``size`` x ``size`` 1-channel image, counted by
        hand (what :func:`d2lcnn.inspect.layer_table` counts, a thousand times faster): the
        convolutions and the classifier."""
        total, channels = 2 * size * size * stem_channels * 9, stem_channels
        for d, w, b, g in zip(self.depths, self.widths, self.bottlenecks, self.group_widths):
            w, g = compatible(w, b, g)
            middle = int(w / b)
            for i in range(d):
                c_in, pixels_in = (channels, size * size) if i == 0 else (w, size * size)
                if i == 0:
                    size = (size + 1) // 2                   # the stage's stride-2 3x3 convolution
                pixels = size * size
                total += 2 * (pixels_in * c_in * middle + pixels * 9 * middle * g + pixels * middle * w)
                if i == 0:
                    total += 2 * pixels * c_in * w           # the projected shortcut
            channels = w
        return total + 2 * channels * num_classes

    def __str__(self) -> str:
        widths = tuple(compatible(w, b, g)[0] for w, b, g in zip(self.widths, self.bottlenecks, self.group_widths))
        return f"d={self.depths} w={widths} b={self.bottlenecks} g={self.group_widths}"


@dataclass(frozen=True)
class Space:
    """A design space: the values each stage's parameters are drawn from, and its constraints.

    Attributes:
        name: as in the paper ("AnyNetX_A", ...).
        stages: number of stages.
        depths, widths, bottlenecks, group_widths: the values to draw from, uniformly.
        shared: the bottleneck ratio and group width are one value for all stages (the paper's
            AnyNetX_B and _C).
        increasing: widths and depths never shrink from a stage to the next (AnyNetX_D and _E).
    """

    name: str
    stages: int = 3
    depths: tuple[int, ...] = (1, 2, 3, 4)
    widths: tuple[int, ...] = tuple(range(8, 129, 8))
    bottlenecks: tuple[int, ...] = (1, 2, 4)
    group_widths: tuple[int, ...] = (1, 2, 4, 8, 16)
    shared: bool = False
    increasing: bool = False

    def draw(self, rng: random.Random) -> AnyNetConfig | None:
        """One random network of the space, or None when a drawn one breaks the constraints
        (sampling by rejection: every allowed network is equally likely)."""
        n = self.stages
        depths = tuple(rng.choice(self.depths) for _ in range(n))
        widths = tuple(rng.choice(self.widths) for _ in range(n))
        if self.shared:
            bottlenecks, group_widths = (rng.choice(self.bottlenecks),) * n, (rng.choice(self.group_widths),) * n
        else:
            bottlenecks = tuple(rng.choice(self.bottlenecks) for _ in range(n))
            group_widths = tuple(rng.choice(self.group_widths) for _ in range(n))
        if self.increasing and (list(depths) != sorted(depths) or list(widths) != sorted(widths)):
            return None
        return AnyNetConfig(depths, widths, bottlenecks, group_widths)


ANYNET_A = Space("AnyNetX_A")
"""Every stage free: 3 stages x (depth 1-4, width 8-128 in steps of 8, bottleneck 1/2/4, groups of 1-16)."""

ANYNET_E = Space("AnyNetX_E", shared=True, increasing=True)
"""AnyNetX_A with one bottleneck ratio and one group width for all stages, widths and depths growing."""

FLOPS_BAND = (2e6, 4e6)
"""The cost band of our samples: 2 to 4 MFLOPs per 28x28 image (about 1/100 of the paper's 400 MF)."""


def sample(space: Space, n: int, seed: int = 0, flops: tuple[float, float] = FLOPS_BAND,
           max_draws: int = 100_000) -> list[AnyNetConfig]:
    """``n`` networks drawn from ``space`` whose FLOPs lie in ``flops``; the same seed, the same networks."""
    rng, found, draws = random.Random(seed), [], 0
    while len(found) < n:
        draws += 1
        if draws > max_draws:
            raise ValueError(f"only {len(found)} of {n} networks of {space.name} in the FLOPs band {flops} after "
                             f"{max_draws:,} draws; widen the band or the space's ranges")
        config = space.draw(rng)
        if config is not None and flops[0] <= config.flops() <= flops[1]:
            found.append(config)
    return found


def train_population(configs: list[AnyNetConfig], recipe, data, seed: int = 0, log=print) -> list[dict]:
    """Train every network of ``configs`` with the same recipe, data and seed; one result each.

    A result holds the config, its FLOPs, its test error after the last epoch and the seconds it
    took. In a notebook each network's progress bar is shown while it trains and then cleared, and
    ``log`` gets one line per network.
    """
    from .lesson import fit_area, fit_in
    from .train import Trainer

    area, results = fit_area(), []
    for i, config in enumerate(configs):
        start = time.perf_counter()
        trainer = Trainer(config.build(), data=data, recipe=recipe, seed=seed)
        fit_in(area, trainer)
        error = 1 - trainer.history[-1]["test_acc"]
        results.append({"config": config, "flops": config.flops(), "error": error,
                        "seconds": time.perf_counter() - start})
        log(f"{i + 1:3d}/{len(configs)}  {config}  {results[-1]['flops'] / 1e6:4.2f} MFLOPs  "
            f"error {error:.3f}  ({results[-1]['seconds']:.0f} s)")
    if area is not None:
        area.clear_output()
    return results


def edf(errors) -> tuple[list[float], list[float]]:
    """The empirical distribution function of ``errors`` at its own points: sorted errors e_(1) <=
    ... <= e_(n) and F = 1/n, 2/n, ..., 1 (the fraction of networks with error <= e)."""
    errors = sorted(float(e) for e in errors)
    n = len(errors)
    if n == 0:
        raise ValueError("edf needs at least one error")
    return errors, [(i + 1) / n for i in range(n)]


def dkw_band(n: int, confidence: float = 0.95) -> float:
    """Half-width of a band that holds the true distribution function, everywhere, with
    probability ``confidence``, around the EDF of n samples (Dvoretzky-Kiefer-Wolfowitz):
    sqrt(ln(2 / (1 - confidence)) / (2 n))."""
    return math.sqrt(math.log(2 / (1 - confidence)) / (2 * n))


def show_edfs(errors_by_space: dict, ax=None, band: bool = True):
    """Draw each space's error EDF as a step curve (shaded: its 95% DKW band); returns the figure.

    The paper's picture (its Figures 5 to 9): further left and higher is better.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    for name, errors in errors_by_space.items():
        x, y = edf(errors)
        xs, ys = [x[0]] + x, [0.0] + y
        line, = ax.step(xs, ys, where="post", label=f"{name} (n={len(x)}, best {min(x):.3f})")
        if band:
            eps = dkw_band(len(x))
            ax.fill_between(xs, [max(0, v - eps) for v in ys], [min(1, v + eps) for v in ys], step="post",
                            alpha=0.15, color=line.get_color())
    ax.set_xlabel("test error")
    ax.set_ylabel("fraction of networks with error <= e")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    ax.set_title("error EDF per design space")
    return ax.figure


def show_width_rule(depth: int, w_0: float, w_a: float, w_m: float, ax=None):
    """Draw RegNet's width rule for one network: the linear widths u_j and the quantised block widths
    w_j (a staircase: one step per stage); returns the figure."""
    import matplotlib.pyplot as plt

    rule = regnet_widths(depth, w_0, w_a, w_m)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    j = list(range(depth))
    ax.plot(j, rule["u"], "o--", label=f"linear: u_j = {w_0} + {w_a} j")
    ax.step(j, rule["w"], where="mid", linewidth=2, label=f"quantised (w_m = {w_m}): stages {rule['widths']}")
    ax.set_xlabel("block j")
    ax.set_ylabel("width (channels)")
    ax.legend(loc="upper left")
    ax.set_title(f"RegNet width rule: {len(rule['widths'])} stages of {rule['depths']} blocks")
    return ax.figure
