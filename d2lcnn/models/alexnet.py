"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012): LeNet made deep, wide and trainable.

Five convolutions and three fully connected layers, with the ideas that made it work: ReLU
instead of sigmoid, dropout in the classifier, overlapping 3x3 max pooling, an 11x11 first
kernel with stride 4 to shrink a 224x224 image quickly. The original was split over two GPUs;
``alexnet_features(groups=2)`` writes that split as grouped convolutions.

Every layer names its ``in_channels`` / ``in_features`` (the book's d2l-en 1.0 code uses lazy
layers, which learn them at the first forward pass), so the parameter count is known before any
input is seen.
"""

from __future__ import annotations

from torch import nn

from . import register


def alexnet_features(in_channels: int = 1, channels: tuple[int, int, int, int, int] = (96, 256, 384, 384, 256),
                     groups: tuple[int, int, int, int, int] = (1, 1, 1, 1, 1), first_padding: int = 1) -> nn.Sequential:
    """The five convolutions (ReLU after each) and three max pools of AlexNet.

    ``groups`` gives each convolution's number of groups: ``(1, 2, 1, 2, 2)`` is the 2012
    two-GPU network, where conv2, conv4 and conv5 saw only their own GPU's half of the channels.
    """
    c1, c2, c3, c4, c5 = channels
    g1, g2, g3, g4, g5 = groups
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=first_padding, groups=g1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=g2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1, groups=g3), nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=g4), nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=g5), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def alexnet_classifier(in_features: int, hidden: int = 4096, num_classes: int = 10,
                       dropout: float = 0.5) -> nn.Sequential:
    """Flatten, then two wide fully connected layers with dropout, then the class scores."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


@register("alexnet", "fashion", input_shape=(1, 1, 224, 224), reference_params=46_764_746,
          book={"batch_size": 128, "lr": 0.01, "resize": 224, "epochs": 10})
def alexnet(dropout: float = 0.5, adaptive_pool: bool = False) -> nn.Sequential:
    """The book's single-tower AlexNet for 1-channel 224x224 images and 10 classes.

    ``adaptive_pool`` pools any image size to the 5x5 maps the classifier takes (lesson 03's
    CPU setting trains it at 96x96).
    """
    pool = [nn.AdaptiveAvgPool2d((5, 5))] if adaptive_pool else []
    return nn.Sequential(*alexnet_features(in_channels=1), *pool, *alexnet_classifier(256 * 5 * 5, dropout=dropout))


@register("alexnet", "paper", input_shape=(1, 3, 224, 224), reference_params=61_100_840)
def alexnet_paper() -> nn.Sequential:
    """torchvision's single-GPU AlexNet layout (64-192-384-256-256 channels, 6x6 pooled maps).

    This is the variant most code calls "AlexNet" today (from Krizhevsky's 2014 "one weird
    trick" paper); its count matches ``torchvision.models.alexnet()``.
    """
    return nn.Sequential(
        *alexnet_features(in_channels=3, channels=(64, 192, 384, 256, 256), first_padding=2),
        nn.AdaptiveAvgPool2d((6, 6)),
        *alexnet_classifier(256 * 6 * 6, num_classes=1000),
    )


@register("alexnet_towers", "paper", input_shape=(1, 3, 224, 224), reference_params=60_965_224)
def alexnet_towers() -> nn.Sequential:
    """The 2012 two-GPU AlexNet, its towers written as grouped convolutions (groups=2).

    conv2, conv4 and conv5 see only their own tower's half of the channels; conv3 and the fully
    connected layers connect across. 60,965,224 parameters: the paper's "60 million".
    """
    return nn.Sequential(
        *alexnet_features(in_channels=3, groups=(1, 2, 1, 2, 2), first_padding=2),
        *alexnet_classifier(256 * 6 * 6, num_classes=1000),
    )
