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
from .capture import (VizError, capture, check_layer, check_range, conv_layers, device_of, evaluating,
                      get_layer, layer_menu, require_conv_maps, same_maps)
from .draw import images_of, overlay, panel


def cam_layers(model: nn.Module, image: torch.Tensor) -> tuple[list[str], str]:
    """The layers Grad-CAM can explain (image-shaped outputs larger than 1x1), and the default.

    The default is the last convolution whose output is larger than 1x1 or, when that
    convolution sits inside a block of the same output size (a residual block, an Inception
    block and its branches), the outermost such block: the map then covers every branch and
    the shortcut, not one branch of the network.
    """
    _, usable, choice = _cam_candidates(model, image)
    return [n for n in dict(model.named_modules()) if n in usable], choice


def _cam_candidates(model: nn.Module, image: torch.Tensor) -> tuple[dict, list[str], str]:
    """One image's outputs of every layer, the usable layers in the order they finish, the default."""
    acts = capture(model, image.unsqueeze(0))
    require_conv_maps(model, [n for n in conv_layers(model) if n in acts and acts[n].dim() == 4], "cam")
    usable = [n for n, a in acts.items() if a.dim() == 4 and a.shape[-1] > 1 and a.shape[-2] > 1]
    convs = [n for n in conv_layers(model) if n in usable]
    if not convs:
        raise VizError(f"cam: every convolution of this model outputs 1x1 maps for a "
                       f"{'x'.join(map(str, image.shape[-2:]))} image: there is no place to point at. "
                       "Give the model larger images (a larger resize), as it was trained on.")
    choice = convs[-1]
    parts = choice.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        if parent not in usable or acts[parent].shape[-2:] != acts[choice].shape[-2:]:
            break
        choice = parent
    return acts, usable, choice


def default_cam_layer(model: nn.Module, image: torch.Tensor) -> str:
    """The layer Grad-CAM explains by default (see :func:`cam_layers`)."""
    return cam_layers(model, image)[1]


def _ready(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    return image.unsqueeze(0).to(device_of(model)).float().requires_grad_(True)


def _scores(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The class probabilities for one image (1, H, W), on the CPU."""
    with torch.no_grad(), evaluating(model):
        return model(image.unsqueeze(0).to(device_of(model))).float().softmax(-1)[0].cpu()


def check_target(target, classes: int) -> int:
    """``target`` if it is one of ``classes`` class numbers (0 .. classes - 1); OutOfRange otherwise.

    A negative number is refused too: Python would read -2 as "the last but one", another class.
    """
    return check_range("target", target, 0, classes - 1, f"the model outputs {classes} class scores",
                       "Pass a class number (data.CLASSES[i] names class i), or None for the predicted class.")


def class_name(k: int) -> str:
    """Fashion-MNIST's name of class ``k``, or "class k" for a model with other classes."""
    return CLASSES[k] if k < len(CLASSES) else f"class {k}"


def gradcam(model: nn.Module, image: torch.Tensor, target: int, layer: str | None = None,
            classes: int | None = None) -> torch.Tensor:
    """Grad-CAM of class ``target`` for one image (1, H, W): an (H, W) map scaled to 0..1.

    ``classes``: the model's number of outputs when the caller knows it; otherwise one forward
    pass finds it, to check ``target``.
    """
    check_target(target, classes or len(_scores(model, image)))
    if layer is not None:
        check_layer(model, layer, cam_layers(model, image)[0], "a layer with an image-shaped output larger than 1x1")
    layer = layer or default_cam_layer(model, image)
    with evaluating(model):
        cam = LayerGradCam(model, get_layer(model, layer)).attribute(_ready(model, image), target=target,
                                                                     relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(image.shape[-2:]), interpolate_mode="bilinear")
    cam = cam.detach().float().cpu()[0, 0]
    return cam / cam.max().clamp_min(1e-8)


def saliency(model: nn.Module, image: torch.Tensor, target: int, classes: int | None = None) -> torch.Tensor:
    """Absolute gradient of class ``target``'s score per pixel, (H, W), scaled to 0..1 (``classes``
    as for :func:`gradcam`)."""
    check_target(target, classes or len(_scores(model, image)))
    with evaluating(model):
        grad = Saliency(model).attribute(_ready(model, image), target=target, abs=True)
    grad = grad.detach().float().cpu()[0, 0]
    return grad / grad.max().clamp_min(1e-8)


def show_cam(model: nn.Module, image: torch.Tensor, target: int | None = None, layer: str | None = None,
             label: int | None = None):
    """The image, its Grad-CAM and its saliency map for class ``target`` (default: the prediction).

    ``label``, the image's true class, is only named in the title. Both are checked first.
    """
    probs = _scores(model, image)
    predicted = int(probs.argmax())
    target = predicted if target is None else check_target(target, len(probs))
    if label is not None:
        check_range("label", label, 0, len(CLASSES) - 1, f"Fashion-MNIST has {len(CLASSES)} classes",
                    "Pass the image's true label (data.test_labels[i]), or None to leave it out.")
    if layer is not None:
        get_layer(model, layer)               # a misspelt name, before anything is drawn
    layer = layer or default_cam_layer(model, image)
    gray = image[0].float().cpu()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    truth = f"true {CLASSES[label]}, " if label is not None else ""
    axes[0].imshow(gray.numpy(), cmap="gray")
    axes[0].set_title(f"{truth}predicted {class_name(predicted)} ({probs[predicted]:.2f})", fontsize=9)
    axes[0].axis("off")
    overlay(axes[1], gray, gradcam(model, image, target, layer, classes=len(probs)),
            f"Grad-CAM at {layer} for {class_name(target)} ({probs[target]:.2f})")
    overlay(axes[2], gray, saliency(model, image, target, classes=len(probs)),
            f"saliency for {class_name(target)}", cmap="hot")
    fig.tight_layout()
    return fig


def cam(model: nn.Module, data, layer: str | None = None, n_images: int | None = None):
    """Widget: pick an image, a class (default: the predicted one) and a layer; see where it looks.

    The layer menu labels each layer with its type and offers each output once (a block whose
    output is its last layer's appears as that layer), as :func:`feature_maps` does.
    ``n_images``: how many test images to offer (default 32, or all when fewer).
    """
    import ipywidgets as widgets

    images, labels = images_of(data, n_images)
    acts, usable, default = _cam_candidates(model, images[0])
    if layer is not None:
        default = check_layer(model, layer, usable, "a layer with an image-shaped output larger than 1x1")
    options = layer_menu(model, usable, acts)      # typed labels, each tensor once (as feature_maps)
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)
    target = widgets.Dropdown(options=[("predicted", -1)] + [(c, i) for i, c in enumerate(CLASSES)],
                              value=-1, description="class")
    pick = widgets.Dropdown(options=options, value=same_maps(acts, default, options), description="layer")

    def draw():
        chosen = None if target.value < 0 else target.value
        return show_cam(model, images[image.value], chosen, pick.value, label=int(labels[image.value]))

    return panel("cam", {"image": image, "target": target, "layer": pick}, draw)
