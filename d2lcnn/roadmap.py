"""The ConvNeXt roadmap at Fashion-MNIST scale: a ResNet modernised one change at a time.

Liu et al. (2022, section 2 and Figure 2) took ResNet-50 and changed one design decision at a
time, training every intermediate network the same way on ImageNet-1K, until it became ConvNeXt-T.
``ROADMAP`` replays those steps on a small network for 32x32 images (Fashion-MNIST resized), one
:class:`Design` per step, each the previous one with one thing changed; ``build(design)`` makes
the network. Sizes are the paper's divided down: stage ratio 1:1:2:1 -> 1:1:3:1 (the paper's
3:4:6:3 -> 3:3:9:3), widths 8 -> 12 per first stage (the paper's 64 -> 96), maps 16, 8, 4, 2
(the paper's 56, 28, 14, 7).

Each step carries the paper's ImageNet top-1 accuracy after it (from its text, section 2) and, where
the text states them, its GFLOPs, so that a lesson can draw both roadmaps side by side. The first
step's change is the training recipe, not the network: a step says which recipe to use
(``"plain"`` or ``"modern"``, see :func:`recipe`).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

from torch import nn

from .models.convnext import LayerNorm2d


@dataclass(frozen=True)
class Design:
    """Every decision the roadmap changes, with the ResNet's choices as defaults.

    Attributes:
        depths: blocks per stage (4 stages).
        width: channels of the first stage's spatial (kxk) convolution; they double per stage.
        stem: "resnet" (3x3 convolution, norm, activation, 3x3 max pool of stride 2) or
            "patchify" (a 2x2 convolution of stride 2, then a norm).
        block: "bottleneck" (1x1 down to ``width``, kxk, 1x1 up to 4 x width: ResNet's),
            "inverted" (1x1 up to 4 x width, kxk, 1x1 down to ``width``: MobileNet v2's), or
            "inverted_dw_first" (kxk, 1x1 up, 1x1 down: the kxk convolution moved up).
        depthwise: the kxk convolution filters each channel on its own (groups = channels).
        kernel: the kxk convolution's size (3 or 7).
        act: "relu" or "gelu".
        fewer_acts: one activation per block (after its middle convolution) and none after the
            addition, instead of one after every convolution but the last, and after the addition.
        norm: "bn" (BatchNorm after every convolution), "bn1" (one BatchNorm per block, after the
            kxk convolution) or "ln" (one LayerNorm there; LayerNorm in the stem and shortcuts too).
        separate_down: stages start with a norm and a 2x2 convolution of stride 2 (and a norm
            follows the pooling), instead of a block whose kxk convolution has stride 2.
    """

    depths: tuple[int, ...] = (1, 1, 2, 1)
    width: int = 8
    stem: str = "resnet"
    block: str = "bottleneck"
    depthwise: bool = False
    kernel: int = 3
    act: str = "relu"
    fewer_acts: bool = False
    norm: str = "bn"
    separate_down: bool = False

    def out_channels(self, stage: int) -> int:
        """A stage's output channels: 4 x its width for bottleneck blocks, its width otherwise."""
        width = self.width * 2 ** stage
        return 4 * width if self.block == "bottleneck" else width


@dataclass(frozen=True)
class Step:
    """One step of the roadmap: what changed, the network after it, the recipe it trains with,
    and the paper's ImageNet top-1 accuracy (%) and GFLOPs after its own step (None: not stated)."""

    name: str
    design: Design
    recipe: str
    paper_top1: float
    paper_gflops: float | None = None


def _roadmap() -> list[Step]:
    steps = [Step("ResNet (plain recipe)", Design(), "plain", 76.1, 4.1)]
    changes = [   # (name, change to the design or recipe, paper top-1, paper GFLOPs)
        ("modern recipe", {}, 78.8, 4.1),
        ("stage ratio 1:1:3:1", {"depths": (1, 1, 3, 1)}, 79.4, None),
        ("patchify stem", {"stem": "patchify"}, 79.5, None),
        ("depthwise, wider", {"depthwise": True, "width": 12}, 80.5, 5.3),
        ("inverted bottleneck", {"block": "inverted"}, 80.6, 4.6),
        ("depthwise moved up", {"block": "inverted_dw_first"}, 79.9, 4.1),
        ("7x7 kernel", {"kernel": 7}, 80.6, None),
        ("ReLU -> GELU", {"act": "gelu"}, 80.6, None),
        ("fewer activations", {"fewer_acts": True}, 81.3, None),
        ("fewer norms", {"norm": "bn1"}, 81.4, None),
        ("BN -> LN", {"norm": "ln"}, 81.5, None),
        ("separate downsampling", {"separate_down": True}, 82.0, None),
    ]
    for name, change, top1, gflops in changes:
        steps.append(Step(name, dataclasses.replace(steps[-1].design, **change), "modern", top1, gflops))
    return steps


ROADMAP = _roadmap()
"""The steps, in the paper's order; the last one's network is a ConvNeXt (without layer scale)."""


def norm_layer(design: Design, channels: int) -> nn.Module:
    return LayerNorm2d(channels, eps=1e-6) if design.norm == "ln" else nn.BatchNorm2d(channels)


def act_layer(design: Design) -> nn.Module:
    return nn.GELU() if design.act == "gelu" else nn.ReLU()


class RoadmapBlock(nn.Module):
    """A residual block at any step: ``branch(x) + shortcut(x)``, then an activation unless the
    design has fewer activations. The branch is three convolutions in the order ``design.block``
    says, each followed by the norm and activation that ``design.norm`` and ``design.fewer_acts``
    leave; the shortcut projects (1x1 convolution of the stride, norm) when the shape changes."""

    def __init__(self, design: Design, in_channels: int, stage: int, stride: int = 1):
        super().__init__()
        width = design.width * 2 ** stage
        out = design.out_channels(stage)
        k = design.kernel
        spatial = lambda c_in, c_out: (c_in, c_out, k, stride, c_in if design.depthwise else 1)   # noqa: E731
        if design.block == "bottleneck":
            convs = [(in_channels, width, 1, 1, 1), spatial(width, width), (width, out, 1, 1, 1)]
        elif design.block == "inverted":
            convs = [(in_channels, 4 * width, 1, 1, 1), spatial(4 * width, 4 * width), (4 * width, out, 1, 1, 1)]
        else:   # inverted_dw_first
            convs = [spatial(in_channels, in_channels), (in_channels, 4 * width, 1, 1, 1), (4 * width, out, 1, 1, 1)]
        spatial_index = 0 if design.block == "inverted_dw_first" else 1
        layers = []
        for i, (c_in, c_out, size, s, groups) in enumerate(convs):
            has_norm = design.norm == "bn" or i == spatial_index
            layers.append(nn.Conv2d(c_in, c_out, size, stride=s, padding=size // 2, groups=groups, bias=not has_norm))
            if has_norm:
                layers.append(norm_layer(design, c_out))
            if (i == 1) if design.fewer_acts else (i < 2):
                layers.append(act_layer(design))
        self.branch = nn.Sequential(*layers)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False),
                                          norm_layer(design, out))
        self.act = nn.Identity() if design.fewer_acts else act_layer(design)

    def forward(self, x):
        return self.act(self.branch(x) + self.shortcut(x))


def build(design: Design, in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """The network of one roadmap step: stem, stages stage1..stage4 (with down2..down4 when the
    design has separate downsampling layers), global pooling, a linear classifier."""
    w = design.width
    if design.stem == "resnet":
        stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, padding=1, bias=False), norm_layer(design, w),
                             act_layer(design), nn.MaxPool2d(3, stride=2, padding=1))
    else:
        stem = nn.Sequential(nn.Conv2d(in_channels, w, 2, stride=2), norm_layer(design, w))
    layers, channels = OrderedDict(stem=stem), w
    for i, depth in enumerate(design.depths):
        out = design.out_channels(i)
        stride = 2 if i > 0 else 1
        if design.separate_down and i > 0:
            layers[f"down{i + 1}"] = nn.Sequential(norm_layer(design, channels),
                                                   nn.Conv2d(channels, out, 2, stride=2))
            channels, stride = out, 1
        blocks = [RoadmapBlock(design, channels if j == 0 else out, i, stride if j == 0 else 1) for j in range(depth)]
        layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
        channels = out
    layers["pool"] = nn.AdaptiveAvgPool2d(1)
    if design.separate_down:
        layers["norm"] = norm_layer(design, channels)
    layers.update(flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
    return nn.Sequential(layers)


def recipe(kind: str, **changes):
    """The training recipe of a step: ``"modern"`` is :class:`d2lcnn.train.Recipe`'s default (SGD
    with Nesterov momentum, warm-up then cosine, label smoothing, weight decay, random shifts and
    flips); ``"plain"`` keeps SGD with momentum and drops the rest (a constant rate, no label
    smoothing, no augmentation), as ResNets were first trained. ``changes`` apply to both."""
    from .train import Recipe

    base = dict(resize=32, **changes)
    if kind == "modern":
        return Recipe(name="modern", **base)
    if kind == "plain":
        return Recipe(name="plain", schedule="constant", warmup=0.0, label_smoothing=0.0, augment=False, **base)
    raise ValueError(f"recipe kind must be 'plain' or 'modern', got {kind!r}")


def show(results: list[dict]):
    """The roadmap as two charts, one row per step: our test accuracy (bars) beside the paper's
    ImageNet top-1 (dots, top axis), and our MFLOPs per image beside the paper's GFLOPs where its text
    states them. ``results`` holds one dict per step with ``step`` (a :class:`Step`), ``test_acc``
    and ``flops``. Returns the figure."""
    import matplotlib.pyplot as plt

    names = [r["step"].name for r in results]
    y = list(range(len(results)))[::-1]
    fig, (acc, cost) = plt.subplots(1, 2, figsize=(11, 0.45 * len(results) + 1.5), sharey=True)
    acc.barh(y, [r["test_acc"] for r in results], color="tab:blue", label="ours: Fashion-MNIST test accuracy")
    low = min(r["test_acc"] for r in results)
    acc.set_xlim(max(0.0, low - 0.05), min(1.0, max(r["test_acc"] for r in results) + 0.02))
    for yi, r in zip(y, results):
        acc.text(r["test_acc"], yi, f" {r['test_acc']:.3f}", va="center", fontsize=8)
    acc.set_yticks(y, names)
    acc.set_xlabel("our test accuracy")
    paper = acc.twiny()
    paper.plot([r["step"].paper_top1 for r in results], y, "o", color="tab:orange", label="paper: ImageNet top-1 (%)")
    paper.set_xlabel("paper: ImageNet top-1 (%)", color="tab:orange")
    cost.barh(y, [r["flops"] / 1e6 for r in results], color="tab:green")
    cost.set_xlabel("our MFLOPs per image")
    gflops = [(yi, r["step"].paper_gflops) for yi, r in zip(y, results) if r["step"].paper_gflops]
    paper_cost = cost.twiny()
    paper_cost.plot([g for _, g in gflops], [yi for yi, _ in gflops], "o", color="tab:orange")
    paper_cost.set_xlabel("paper: GFLOPs (where its text states them)", color="tab:orange")
    fig.tight_layout()
    return fig
