"""The model registry: every architecture of the course, by name and configuration.

Each family module (``lenet.py``, ``alexnet.py``, ...) builds its networks from named blocks and
registers a builder per configuration:

* ``fashion``: what the notebooks train on Fashion-MNIST (1 channel, 10 classes, the book's
  sizes for the book's models), with the book's training recipe attached;
* ``paper``: the configuration of the original paper (3 channels, 1,000 classes, 224x224
  unless the paper says otherwise), with the parameter count the paper or torchvision reports.

``build("vgg11", "paper")`` makes a network; ``specs()`` lists what there is, which is what
``python -m d2lcnn models`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

CONFIGS = ("fashion", "paper")


@dataclass(frozen=True)
class ModelSpec:
    """One registered network: how to build it and what it expects.

    ``book`` holds the book's training recipe (``batch_size``, ``lr``, ``resize``, ``epochs``) as
    plain data; ``d2lcnn.train.Recipe.book`` turns it into a recipe. ``modern`` holds this
    network's changes to the modern recipe (``Recipe.modern``), e.g. its peak learning rate. ``reference_params`` is the
    parameter count we are checked against (the book's, the paper's or torchvision's).
    """

    name: str
    config: str
    builder: Callable[..., nn.Module]
    input_shape: tuple[int, int, int, int]
    family: str
    book: dict | None = None
    reference_params: int | None = None
    modern: dict = field(default_factory=dict)
    about: str = ""
    extra: dict = field(default_factory=dict)
    cpu: dict = field(default_factory=dict)

    def build(self, **kwargs) -> nn.Module:
        """A fresh network of this configuration (keyword arguments go to the builder).

        The network is tagged with ``d2lcnn_name`` ("lenet/fashion"), which checkpoints record so
        that loading one into another architecture can say which is which, and with
        ``d2lcnn_build``, the keyword arguments it was built with, which checkpoints record when
        they are plain values (``adaptive_pool=True``) so that ``Trainer.from_checkpoint`` builds
        the same network again.
        """
        net = self.builder(**kwargs)
        net.d2lcnn_name = f"{self.name}/{self.config}"
        net.d2lcnn_build = dict(kwargs)
        return net


_REGISTRY: dict[tuple[str, str], ModelSpec] = {}


def register(name: str, config: str, input_shape: tuple[int, int, int, int], book: dict | None = None,
             reference_params: int | None = None, modern: dict | None = None, about: str = "",
             cpu: dict | None = None):
    """Decorator that adds a builder to the registry under ``(name, config)``."""
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {CONFIGS}, got {config!r}")

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        family = builder.__module__.rsplit(".", 1)[-1]
        _REGISTRY[(name, config)] = ModelSpec(name, config, builder, tuple(input_shape), family,
                                              book, reference_params, dict(modern or {}),
                                              about or (builder.__doc__ or "").strip().split("\n")[0],
                                              cpu=dict(cpu or {}))
        return builder

    return decorate


def spec(name: str, config: str = "fashion") -> ModelSpec:
    """The registered spec of ``name`` in ``config``; a clear error lists the known names."""
    try:
        return _REGISTRY[(name, config)]
    except KeyError:
        known = ", ".join(sorted({n for n, c in _REGISTRY if c == config})) or "none"
        raise KeyError(f"no model {name!r} in the {config!r} configuration; known: {known}") from None


def build(name: str, config: str = "fashion", **kwargs) -> nn.Module:
    """Build a registered network, e.g. ``build("lenet")`` or ``build("vgg16", "paper")``."""
    return spec(name, config).build(**kwargs)


def specs(config: str | None = None) -> list[ModelSpec]:
    """Every registered spec (of one configuration when given), in course order."""
    return [s for s in _REGISTRY.values() if config is None or s.config == config]


# Importing the family modules fills the registry, in course order.
from . import lenet  # noqa: E402,F401
from . import alexnet  # noqa: E402,F401
from . import vgg  # noqa: E402,F401
from . import nin  # noqa: E402,F401
from . import googlenet  # noqa: E402,F401
from . import inception_v3  # noqa: E402,F401
from . import resnet  # noqa: E402,F401
from . import densenet  # noqa: E402,F401
from . import resnext  # noqa: E402,F401
from . import senet  # noqa: E402,F401
from . import mobilenet  # noqa: E402,F401
from . import shufflenet  # noqa: E402,F401
from . import efficientnet  # noqa: E402,F401
from . import regnet  # noqa: E402,F401
from . import convnext  # noqa: E402,F401
