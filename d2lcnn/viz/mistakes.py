"""What a network gets wrong: the confusion matrix and the most confident mistakes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..data import CLASSES, show_images
from ..runtime import quick_mode
from .capture import device_of, evaluating
from .draw import panel

QUICK_LIMIT = 256


@torch.no_grad()
def predictions(model: nn.Module, data, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Predicted class, its probability and the true label for the test set (CPU tensors).

    Runs on the data's device in batches; ``limit`` caps the test images (quick mode: 256).
    """
    if quick_mode():
        limit = min(limit or QUICK_LIMIT, QUICK_LIMIT)
    device = device_of(model)
    preds, probs, labels = [], [], []
    with evaluating(model):
        for X, y in data.test_batches(batch_size=256, limit=limit):
            p = model(X.to(device)).float().softmax(-1)
            conf, pred = p.max(-1)
            preds.append(pred.cpu()), probs.append(conf.cpu()), labels.append(y.cpu())
    return {"pred": torch.cat(preds), "prob": torch.cat(probs), "label": torch.cat(labels)}


def confusion_matrix(pred: torch.Tensor, label: torch.Tensor, classes: int = len(CLASSES)) -> torch.Tensor:
    """Counts: row = true class, column = predicted class."""
    return torch.bincount(label * classes + pred, minlength=classes * classes).view(classes, classes)


def show_confusion(result: dict, normalize: bool = False):
    """Draw the confusion matrix of ``predictions(...)``, as counts or as row fractions."""
    counts = confusion_matrix(result["pred"], result["label"])
    values = counts / counts.sum(1, keepdim=True).clamp_min(1) if normalize else counts
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    image = ax.imshow(values.numpy(), cmap="Blues")
    for i in range(len(CLASSES)):
        for j in range(len(CLASSES)):
            v = values[i, j].item()
            text = f"{v:.2f}" if normalize else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if v > values.max().item() / 2 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = (result["pred"] == result["label"]).float().mean().item()
    ax.set_title(f"{len(result['label']):,} test images, accuracy {accuracy:.3f}", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def show_mistakes(result: dict, data, n: int = 16):
    """The ``n`` mistakes made with the highest confidence, titled true -> predicted."""
    wrong = (result["pred"] != result["label"]).nonzero().flatten()
    order = wrong[result["prob"][wrong].argsort(descending=True)][:n]
    if len(order) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no mistakes on these images", ha="center")
        ax.axis("off")
        return fig
    images = data.test_images[order.to(data.test_images.device)]
    fig = show_images(images, result["label"][order], result["pred"][order], ncols=8)
    for ax, prob in zip(fig.axes, result["prob"][order].tolist()):      # the confidence, under the title
        ax.set_title(f"{ax.get_title()}\n{prob:.0%} sure", fontsize=8, color=ax.title.get_color())
    fig.suptitle("most confident mistakes (true -> predicted)", fontsize=10)
    return fig


def mistakes(model: nn.Module, data, limit: int | None = None, n: int = 16):
    """Widget: the confusion matrix (counts or normalised) or the gallery of confident mistakes."""
    import ipywidgets as widgets

    result = predictions(model, data, limit)
    view = widgets.ToggleButtons(options=["counts", "normalised", "mistakes"], value="counts",
                                 description="show")

    def draw():
        if view.value == "mistakes":
            return show_mistakes(result, data, n)
        return show_confusion(result, normalize=view.value == "normalised")

    return panel("mistakes", {"view": view}, draw)
