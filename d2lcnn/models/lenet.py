"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998): convolutions, pooling, then a classifier.

Two convolution + pooling stages turn a 28x28 (or 32x32) digit into 16 maps of 5x5; three
fully connected layers classify them. The book's version keeps the paper's sigmoid-like
activations and average ("subsampling") pooling, and pads the first convolution so that
Fashion-MNIST's 28x28 images get the 32x32 field of view the paper's digits had.

The blocks return small ``nn.Sequential`` stacks; the builders unpack them (``*conv_block(...)``)
into one flat ``nn.Sequential``, so the layers are numbered 0..11 exactly as in the book.

``bn_lenet`` is the book's LeNet with batch normalization before every sigmoid (``norm=``).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from . import register


def conv_block(in_channels: int, out_channels: int, kernel_size: int = 5, padding: int = 0,
               activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d,
               norm: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """Convolution, activation, then 2x2 pooling that halves the map: one LeNet stage.

    ``norm`` (e.g. ``nn.BatchNorm2d``) is called with the channel count and placed between the
    convolution and the activation, where Ioffe and Szegedy put batch normalization.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, padding=padding),
        *([norm(out_channels)] if norm else []),
        activation(),
        pool(kernel_size=2, stride=2),
    )


def classifier(in_features: int, hidden: tuple[int, ...] = (120, 84), num_classes: int = 10,
               activation: type[nn.Module] = nn.Sigmoid, norm: Callable[[int], nn.Module] | None = None) -> nn.Sequential:
    """Flatten the maps, then fully connected layers (with activations between them).

    ``norm`` (e.g. ``nn.BatchNorm1d``) goes between each hidden layer and its activation.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(in_features, width), *([norm(width)] if norm else []), activation()]
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


@register("lenet", "fashion", input_shape=(1, 1, 28, 28), reference_params=61_706,
          # A small sigmoid network underfits: no augmentation or smoothing, Xavier for sigmoids.
          modern={"lr": 0.5, "init": "xavier", "augment": False, "weight_decay": 5e-5, "label_smoothing": 0.0},
          book={"batch_size": 256, "lr": 0.9, "resize": 28, "epochs": 10})
def lenet(activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d) -> nn.Sequential:
    """The book's LeNet on 28x28 Fashion-MNIST: sigmoid, average pooling, padded first conv."""
    return nn.Sequential(
        *conv_block(1, 6, kernel_size=5, padding=2, activation=activation, pool=pool),   # 6 x 14 x 14
        *conv_block(6, 16, kernel_size=5, activation=activation, pool=pool),             # 16 x 5 x 5
        *classifier(16 * 5 * 5, hidden=(120, 84), num_classes=10, activation=activation),
    )


@register("lenet", "paper", input_shape=(1, 1, 32, 32), reference_params=61_706)
def lenet5() -> nn.Sequential:
    """LeNet-5 with the paper's layer sizes: 32x32 digits, tanh, no padding, 10 classes.

    Simplified where modern frameworks differ from 1998: C3 connects every input map (the
    paper's sparse table gives 1,516 weights instead of 2,416), S2/S4 are plain average pools
    (the paper's have a trainable scale and bias each) and the output is a linear layer (the
    paper's is a Euclidean RBF layer). The paper reports about 60,000 trainable parameters.
    """
    return nn.Sequential(
        *conv_block(1, 6, kernel_size=5, activation=nn.Tanh),      # C1, S2: 6 x 14 x 14
        *conv_block(6, 16, kernel_size=5, activation=nn.Tanh),     # C3, S4: 16 x 5 x 5
        *classifier(16 * 5 * 5, hidden=(120, 84), num_classes=10, activation=nn.Tanh),  # C5, F6, out
    )


@register("bn_lenet", "fashion", input_shape=(1, 1, 28, 28), reference_params=44_878,
          # Sigmoids again want Xavier; BatchNorm lets the peak learning rate be high.
          modern={"lr": 0.5, "init": "xavier", "augment": False, "weight_decay": 5e-5, "label_smoothing": 0.0},
          book={"batch_size": 256, "lr": 1.0, "resize": 28, "epochs": 10},
          # So small that bfloat16 and channels-last did not pay on the 2-core CPU: 0.92-0.97x of
          # float32 in three runs of `python -m d2lcnn speed` (measurements/cpu-path.json).
          cpu={"channels_last": False, "amp": False})
def bn_lenet() -> nn.Sequential:
    """The book's LeNet with batch normalization (Ioffe and Szegedy, 2015) before every sigmoid.

    As in the book's BN-LeNet, the first convolution is not padded: 28x28 -> 24x24, so the
    classifier receives 16 maps of 4x4 (256 features) and the network has 44,878 parameters.
    """
    return nn.Sequential(
        *conv_block(1, 6, kernel_size=5, norm=nn.BatchNorm2d),      # 6 x 12 x 12
        *conv_block(6, 16, kernel_size=5, norm=nn.BatchNorm2d),     # 16 x 4 x 4
        *classifier(16 * 4 * 4, hidden=(120, 84), num_classes=10, norm=nn.BatchNorm1d),
    )
