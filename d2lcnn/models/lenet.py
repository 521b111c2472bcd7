"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998): convolutions, pooling, then a classifier.

Two convolution + pooling stages turn a 28x28 (or 32x32) digit into 16 maps of 5x5; three
fully connected layers classify them. The book's version keeps the paper's sigmoid-like
activations and average ("subsampling") pooling, and pads the first convolution so that
Fashion-MNIST's 28x28 images get the 32x32 field of view the paper's digits had.
"""

from __future__ import annotations

from torch import nn

from . import register


def lenet_features(activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d,
                   first_padding: int = 2) -> nn.Sequential:
    """The two conv + activation + pool stages: (N, 1, 28, 28) -> (N, 16, 5, 5)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=first_padding), activation(),
        pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), activation(),
        pool(kernel_size=2, stride=2),
    )


def lenet_classifier(activation: type[nn.Module] = nn.Sigmoid, num_classes: int = 10) -> nn.Sequential:
    """Flatten the 16x5x5 maps and classify them with three fully connected layers."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), activation(),
        nn.Linear(120, 84), activation(),
        nn.Linear(84, num_classes),
    )


@register("lenet", "fashion", input_shape=(1, 1, 28, 28), reference_params=61_706,
          book={"batch_size": 256, "lr": 0.9, "resize": 28, "epochs": 10})
def lenet(activation: type[nn.Module] = nn.Sigmoid, pool: type[nn.Module] = nn.AvgPool2d) -> nn.Sequential:
    """The book's LeNet on 28x28 Fashion-MNIST: sigmoid, average pooling, padded first conv."""
    return nn.Sequential(lenet_features(activation, pool, first_padding=2), lenet_classifier(activation))


@register("lenet", "paper", input_shape=(1, 1, 32, 32), reference_params=61_706)
def lenet5() -> nn.Sequential:
    """LeNet-5 as in the paper's layer sizes: 32x32 digits, tanh, no padding, 10 classes.

    Simplified where modern frameworks differ from 1998: C3 connects every input map (the
    paper's sparse table gives 1,516 weights instead of 2,416), S2/S4 are plain average pools
    (the paper's have a trainable scale and bias each) and the output is a linear layer (the
    paper's is a Euclidean RBF layer). The paper reports about 60,000 trainable parameters.
    """
    return nn.Sequential(lenet_features(nn.Tanh, nn.AvgPool2d, first_padding=0), lenet_classifier(nn.Tanh))
