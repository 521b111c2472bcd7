"""Where a network looks: Grad-CAM and gradient saliency, computed with Captum.

Grad-CAM weighs a convolution's maps by the average gradient of a class score with respect to
each map, keeps the positive part and upsamples it to the image: the regions that raise that
class. Saliency is the absolute gradient of the score with respect to each input pixel. Captum
(PyTorch's attribution library) computes both; we only draw them over the grayscale image.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from captum.attr import LayerAttribution, LayerGradCam, Saliency
from torch import nn

from ..data import CLASSES
from .capture import capture, check_layer, conv_layers, device_of, evaluating, get_layer
from .draw import images_of, overlay, panel


def cam_layers(model: nn.Module, image: torch.Tensor) -> tuple[list[str], str]:
    """The layers Grad-CAM can explain (image-shaped outputs larger than 1x1), and the default.

    The default is the last convolution whose output is larger than 1x1 or, when that
    convolution sits inside a block of the same output size (a residual block, an Inception
    block and its branches), the outermost such block: the map then covers every branch and
    the shortcut, not one branch of the network.
    """
    acts = capture(model, image.unsqueeze(0))
    usable = [n for n, a in acts.items() if a.dim() == 4 and a.shape[-1] > 1 and a.shape[-2] > 1]
    convs = [n for n in conv_layers(model) if n in usable]
    if not convs:
        raise ValueError("the model has no convolution with a spatial output to explain")
    choice = convs[-1]
    parts = choice.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        if parent not in usable or acts[parent].shape[-2:] != acts[choice].shape[-2:]:
            break
        choice = parent
    order = [n for n in dict(model.named_modules()) if n in usable]
    return order, choice


def default_cam_layer(model: nn.Module, image: torch.Tensor) -> str:
    """The layer Grad-CAM explains by default (see :func:`cam_layers`)."""
    return cam_layers(model, image)[1]


def _ready(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    return image.unsqueeze(0).to(device_of(model)).float().requires_grad_(True)


def gradcam(model: nn.Module, image: torch.Tensor, target: int, layer: str | None = None) -> torch.Tensor:
    """Grad-CAM of class ``target`` for one image (1, H, W): an (H, W) map scaled to 0..1."""
    layer = layer or default_cam_layer(model, image)
    with evaluating(model):
        cam = LayerGradCam(model, get_layer(model, layer)).attribute(_ready(model, image), target=target,
                                                                     relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(image.shape[-2:]), interpolate_mode="bilinear")
    cam = cam.detach().float().cpu()[0, 0]
    return cam / cam.max().clamp_min(1e-8)


def saliency(model: nn.Module, image: torch.Tensor, target: int) -> torch.Tensor:
    """Absolute gradient of class ``target``'s score per pixel, (H, W), scaled to 0..1."""
    with evaluating(model):
        grad = Saliency(model).attribute(_ready(model, image), target=target, abs=True)
    grad = grad.detach().float().cpu()[0, 0]
    return grad / grad.max().clamp_min(1e-8)


def show_cam(model: nn.Module, image: torch.Tensor, target: int | None = None, layer: str | None = None,
             label: int | None = None):
    """The image, its Grad-CAM and its saliency map for class ``target`` (default: the prediction)."""
    with torch.no_grad(), evaluating(model):
        probs = model(image.unsqueeze(0).to(device_of(model))).float().softmax(-1)[0].cpu()
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


def cam(model: nn.Module, data, layer: str | None = None, n_images: int = 32):
    """Widget: pick an image, a class (default: the predicted one) and a layer; see where it looks."""
    import ipywidgets as widgets

    images, labels = images_of(data, n_images)
    layers, default = cam_layers(model, images[0])
    if layer is not None:
        default = check_layer(model, layer, layers, "a layer with an image-shaped output larger than 1x1")
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)
    target = widgets.Dropdown(options=[("predicted", -1)] + [(c, i) for i, c in enumerate(CLASSES)],
                              value=-1, description="class")
    pick = widgets.Dropdown(options=layers, value=default, description="layer")

    def draw():
        chosen = None if target.value < 0 else target.value
        return show_cam(model, images[image.value], chosen, pick.value, label=int(labels[image.value]))

    return panel("cam", {"image": image, "target": target, "layer": pick}, draw)
