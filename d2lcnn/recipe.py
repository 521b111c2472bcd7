"""How to train: the Recipe (plain data a checkpoint can hold), its optimizer and its initialisation.

A Recipe is every choice of a run that is not the network: batch size, learning rate and its
schedule, regularisation, augmentation, initialisation. :meth:`Recipe.book` gives d2l's
``train_ch6`` settings, :meth:`Recipe.modern` the modern ones at a model's own image size; a
bad value is refused when the Recipe is made (:func:`d2lcnn.guards.check_recipe`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from . import models as registry
from .guards import check_recipe

DATA_SETTINGS = ("batch_size", "resize", "augment", "normalize", "seed")
"""The data pipeline's settings a checkpoint records (they decide what the model saw)."""


@dataclass
class Recipe:
    """How to train: plain data, so it fits in a ``weights_only`` checkpoint.

    The defaults are the *modern* recipe; :meth:`book` gives the book's, :meth:`modern` the
    modern one with a model's own image size and peak learning rate.
    """

    name: str = "modern"
    batch_size: int = 128
    lr: float = 0.02              # the peak learning rate
    epochs: int = 10
    resize: int = 28
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4    # applied to weights, not to biases and norm layers
    schedule: str = "onecycle"    # "constant", or "onecycle": linear warm-up, then cosine to 0
    warmup: float = 0.15          # fraction of the steps spent warming up (onecycle)
    label_smoothing: float = 0.1
    augment: bool = True          # random 2-pixel shifts and horizontal flips
    normalize: bool = True        # subtract the training mean, divide by the std
    init: str = "kaiming"         # "xavier" (the book's), "kaiming" (for ReLU nets), "pytorch" or "none"
    clip_grad_norm: float = 5.0   # 0 turns clipping off

    def __post_init__(self):
        check_recipe(self)  # a bad value is refused here, with the fix, not at the first step

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate at ``step`` of ``total``: constant, or linear warm-up then cosine to 0."""
        if self.schedule == "constant":
            return self.lr
        warm = max(1, int(self.warmup * total))
        if step < warm:
            return self.lr * (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    @classmethod
    def book(cls, name: str, **changes) -> "Recipe":
        """The book's recipe for a registered model: plain SGD, constant rate, Xavier init.

        Exactly what d2l's ``train_ch6`` does: no momentum, no weight decay, no schedule, no
        augmentation or normalisation, Xavier-uniform weights for Conv2d and Linear layers.
        """
        book = registry.spec(name, "fashion").book
        if book is None:
            raise KeyError(f"the book has no recipe for {name!r}")
        recipe = cls(name="book", batch_size=book["batch_size"], lr=book["lr"], epochs=book["epochs"],
                     resize=book["resize"], momentum=0.0, nesterov=False, weight_decay=0.0,
                     schedule="constant", warmup=0.0, label_smoothing=0.0, augment=False,
                     normalize=False, init="xavier", clip_grad_norm=0.0)
        return dataclasses.replace(recipe, **changes)

    @classmethod
    def modern(cls, name: str, **changes) -> "Recipe":
        """The modern recipe at a registered model's image size, with the model's own changes.

        A model registers what it needs changed (``register(..., modern={...})``): LeNet, whose
        sigmoids want Xavier's initialisation rather than Kaiming's, says so there.
        """
        spec = registry.spec(name, "fashion")
        resize = spec.book["resize"] if spec.book else spec.input_shape[-1]
        return dataclasses.replace(cls(resize=resize), **{**spec.modern, **changes})


def init_weights(model: nn.Module, how: str) -> None:
    """Initialise Conv2d and Linear weights: "xavier" as the book, "kaiming" for ReLU networks,
    "pytorch" as each layer's own defaults.

    "kaiming" is what lets deep ReLU networks without normalisation (AlexNet, VGG, NiN) start
    learning at once; with the book's Xavier weights and a large constant learning rate they
    sometimes never leave chance level. It treats every Linear layer as a classifier (small
    weights, std 0.01), which is wrong where Linear layers are 1x1 convolutions inside the blocks
    (ConvNeXt's): their branches then start near zero and SGD learns slowly. Such a network takes
    "pytorch": every layer's own ``reset_parameters`` (Kaiming-uniform scaled by its fan-in).

    Every layer is first reset to PyTorch's own initialisation, so that under the same seed the
    same network comes out every time (biases included); "none" leaves the weights as they are.
    """
    if how not in ("xavier", "kaiming", "pytorch", "none"):
        raise ValueError(f"init must be 'xavier', 'kaiming', 'pytorch' or 'none', got {how!r}")
    if how == "none":
        return
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    if how == "pytorch":
        return
    for m in model.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if how == "xavier":  # as d2l's train_ch6: weights only, biases keep PyTorch's default
            nn.init.xavier_uniform_(m.weight)
            continue
        if isinstance(m, nn.Conv2d):  # keeps the activations' scale through ReLU layers
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        else:  # small classifier weights, as torchvision initialises VGG and AlexNet
            nn.init.normal_(m.weight, 0, 0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def make_optimizer(model: nn.Module, recipe: Recipe, fused: bool = True) -> torch.optim.SGD:
    """SGD as ``recipe`` says: its momentum (Nesterov's when asked), weight decay on the weights
    only (not on biases and norm layers, whose decay only hinders them).

    Fused (one kernel updates all the parameters) wherever this torch has it for their device.
    PyTorch's default on a CPU is a Python loop of small operations per parameter tensor, which
    reads and writes each weight several times: for lesson 3's AlexNet (46 M parameters) on the
    2-core development CPU, an update took 150 ms that way and 19 ms fused, and a training step
    636 ms and 479 ms (``python -m d2lcnn speed --optimizer``, ``measurements/optimizer-cpu.json``).
    On float16 GPUs the scaler also needs it, to skip an overflowed step without a host read (see
    :func:`d2lcnn.train.scaled_update`). Its momentum buffers start at zero (see
    :func:`zero_momentum`). ``fused=False`` gives PyTorch's default, which that command measures
    against.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    settings = {"lr": recipe.lr, "momentum": recipe.momentum, "nesterov": recipe.nesterov and recipe.momentum > 0}
    if not fused:
        return torch.optim.SGD(groups, **settings)
    try:
        optimizer = torch.optim.SGD(groups, **settings, fused=True)
    except (TypeError, RuntimeError):   # a torch without fused SGD (for this device): the plain one
        return torch.optim.SGD(groups, **settings)
    zero_momentum(optimizer)
    return optimizer


def zero_momentum(optimizer: torch.optim.Optimizer) -> None:
    """Give an optimizer with momentum zero momentum buffers before its first step.

    Fused SGD makes its buffers with ``torch.empty_like`` at its first step and fills them
    then; when the scaler skips that step they keep whatever memory held (seen on the CPU), and
    every later step adds that to its update. Zeros give exactly the first step SGD defines.
    """
    for group in optimizer.param_groups:
        if not group["momentum"]:
            continue
        for p in group["params"]:
            optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
