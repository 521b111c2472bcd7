"""Where a network looks: Grad-CAM and gradient saliency, computed with Captum.

Grad-CAM weighs a convolution's maps by the average gradient of a class score with respect to
each map, keeps the positive part and upsamples it to the image: the regions that raise that
class. Saliency is the absolute gradient of the score with respect to each input pixel. Captum
(PyTorch's attribution library) computes both; we only draw them over the grayscale image.
"""

from __future__ import annotations

import contextlib

import matplotlib.pyplot as plt
import torch
from captum.attr import LayerAttribution, LayerGradCam, Saliency
from torch import nn

from ..data import CLASSES
from .capture import capture, conv_layers, get_layer
from .draw import images_of, overlay, panel


def default_cam_layer(model: nn.Module, image: torch.Tensor) -> str:
    """The last convolution whose output still has a spatial size above 1x1."""
    acts = capture(model, image.unsqueeze(0), conv_layers(model))
    usable = [n for n in conv_layers(model) if n in acts and acts[n].shape[-1] > 1]
    if not usable:
        raise ValueError("the model has no convolution with a spatial output to explain")
    return usable[-1]


def _ready(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return image.unsqueeze(0).to(device).float().requires_grad_(True)


@contextlib.contextmanager
def _eval(model: nn.Module):
    """Run attributions in eval mode (dropout off, BatchNorm statistics fixed), restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def gradcam(model: nn.Module, image: torch.Tensor, target: int, layer: str | None = None) -> torch.Tensor:
    """Grad-CAM of class ``target`` for one image (1, H, W): an (H, W) map scaled to 0..1."""
    layer = layer or default_cam_layer(model, image)
    with _eval(model):
        cam = LayerGradCam(model, get_layer(model, layer)).attribute(_ready(model, image), target=target,
                                                                     relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(image.shape[-2:]), interpolate_mode="bilinear")
    cam = cam.detach().float().cpu()[0, 0]
    return cam / cam.max().clamp_min(1e-8)


def saliency(model: nn.Module, image: torch.Tensor, target: int) -> torch.Tensor:
    """Absolute gradient of class ``target``'s score per pixel, (H, W), scaled to 0..1."""
    with _eval(model):
        grad = Saliency(model).attribute(_ready(model, image), target=target, abs=True)
    grad = grad.detach().float().cpu()[0, 0]
    return grad / grad.max().clamp_min(1e-8)


def show_cam(model: nn.Module, image: torch.Tensor, target: int | None = None, layer: str | None = None,
             label: int | None = None):
    """The image, its Grad-CAM and its saliency map for class ``target`` (default: the prediction)."""
    with torch.no_grad(), _eval(model):
        probs = model(image.unsqueeze(0).to(next(model.parameters()).device)).float().softmax(-1)[0].cpu()
    predicted = int(probs.argmax())
    target = predicted if target is None else target
    layer = layer or default_cam_layer(model, image)
    gray = image[0].float().cpu()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    truth = f"true {CLASSES[label]}, " if label is not None else ""
    axes[0].imshow(gray.numpy(), cmap="gray")
    axes[0].set_title(f"{truth}predicted {CLASSES[predicted]} ({probs[predicted]:.2f})", fontsize=9)
    axes[0].axis("off")
    overlay(axes[1], gray, gradcam(model, image, target, layer),
            f"Grad-CAM at {layer} for {CLASSES[target]} ({probs[target]:.2f})")
    overlay(axes[2], gray, saliency(model, image, target), f"saliency for {CLASSES[target]}", cmap="hot")
    fig.tight_layout()
    return fig


def cam(model: nn.Module, data, n_images: int = 32):
    """Widget: pick an image, a class (default: the predicted one) and a layer; see where it looks."""
    import ipywidgets as widgets

    images, labels = images_of(data, n_images)
    layers = conv_layers(model)
    default = default_cam_layer(model, images[0])
    usable = layers[:layers.index(default) + 1]
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)
    target = widgets.Dropdown(options=[("predicted", -1)] + [(c, i) for i, c in enumerate(CLASSES)],
                              value=-1, description="class")
    layer = widgets.Dropdown(options=usable, value=default, description="layer")

    def draw():
        chosen = None if target.value < 0 else target.value
        return show_cam(model, images[image.value], chosen, layer.value, label=int(labels[image.value]))

    return panel("cam", {"image": image, "target": target, "layer": layer}, draw)
