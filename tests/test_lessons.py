"""What the lessons teach, checked where a regression would mislead a class: exercise cells that
show the form of an answer and never the answer, NiN's class maps that are maps (not the 1x1
averages after global pooling) in both settings, the CPU settings' data, the book's figures
shown with their source."""

from __future__ import annotations

import re
import types
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch

from d2lcnn import book, lesson, train

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("*.ipynb"))


def code_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def cell_with(cells: list[str], needle: str) -> str:
    found = [c for c in cells if needle in c]
    assert len(found) == 1, f"{len(found)} cells hold {needle!r}"
    return found[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_answer_cells_show_the_form_not_the_answer(path):
    """``answer = None   # a tuple like (N, C, H, W)``: no example numbers, no answer filled in."""
    for source in code_cells(path):
        if "exercises.check_" not in source:
            continue
        lines = [line for line in source.splitlines() if line.startswith("answer =")]
        assert len(lines) == 1, f"a self-check cell needs one `answer = None` line:\n{source}"
        value, _, comment = lines[0].partition("#")
        assert value.split("=", 1)[1].strip() == "None", f"the answer is filled in: {lines[0]}"
        assert comment.strip(), f"say the form of the answer in a comment: {lines[0]}"
        form = re.sub(r"\b(between|from) \d+ (and|to) \d+|\d+\.\d+", "", comment)   # a range, a format
        assert not re.search(r"e\.g\.|for example|\(\s*\d|\d{2,}", form), (
            f"an example can give the answer away; show the form, e.g. `# a tuple like (N, C, H, W)`: {lines[0]}")


def because_texts(source: str) -> list[str]:
    """The text a self-check cell writes into ``because=``: string literals, and the literal parts
    of f-strings (their ``{...}`` parts are computed, not written)."""
    import ast

    texts = []
    for node in ast.walk(ast.parse(source)):
        for keyword in getattr(node, "keywords", []) if isinstance(node, ast.Call) else []:
            if keyword.arg == "because":
                texts.append("".join(part.value for part in ast.walk(keyword.value)
                                     if isinstance(part, ast.Constant) and isinstance(part.value, str)))
    return texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_worked_answers_in_a_cell_do_not_state_the_result(path):
    """``because=`` is in the cell the student edits, above the answer: it may say how (the formula,
    the values it starts from) but not the result, ``... = 9``. A worked answer that needs the
    numbers is computed from the layers (``exercises.check_receptive_field``) or formatted from
    them at run time."""
    for source in code_cells(path):
        if "exercises.check_" not in source:
            continue
        for text in because_texts(source):
            assert not re.search(r"=\s*[\d.,]*\d", text), (
                f"because= states the result where the student reads it before answering: {text!r}")


def run_cells(cells: list[str], namespace: dict) -> None:
    for source in cells:
        exec(compile(source, "<cell>", "exec"), namespace)


@pytest.mark.parametrize("setting", ["cpu", "gpu"])
def test_nin_class_maps_are_maps_not_averages(setting, monkeypatch):
    """The class-map figure of 05_nin draws the last block's output: larger than 1x1 in both settings."""
    matplotlib.use("Agg")
    monkeypatch.setattr("matplotlib.pyplot.show", lambda *a, **k: None)
    path = next(CHAPTERS.glob("05_*.ipynb"))
    cells = code_cells(path)
    namespace: dict = {}
    run_cells([cell_with(cells, "import torch"), cell_with(cells, "net = nn.Sequential("),
               cell_with(cells, "SETTINGS = {")], namespace)
    resize = namespace["SETTINGS"][setting]["resize"]
    fm = lesson.training_data(train.Recipe.modern("nin", resize=resize), subset=1, test_subset=1, device="cpu")
    namespace["trainer"] = types.SimpleNamespace(data=fm)
    run_cells([cell_with(cells, '"class_maps"')], namespace)
    maps = namespace["class_maps"]
    assert maps.shape[:2] == (4, 10) and maps.shape[-1] > 1 and maps.shape[-2] > 1, tuple(maps.shape)


def test_training_data_follows_the_recipe_on_fewer_images():
    recipe = train.Recipe.modern("alexnet", resize=96)
    fm = lesson.training_data(recipe, subset=3, test_subset=2, device="cpu")
    assert (fm.batch_size, fm.resize, fm.augment, fm.normalize) == (recipe.batch_size, 96, recipe.augment,
                                                                  recipe.normalize)
    assert len(fm.train_labels) == 30 and len(fm.test_labels) == 20
    assert torch.bincount(fm.train_labels).tolist() == [3] * 10


def test_versus_book_names_its_source_and_keeps_its_columns():
    history = [{"epoch": 1, "test_acc": 0.8123, "examples_per_s": 1234.5, "device": "cpu", "interrupted": False}]
    table = book.versus_book(history, "nin").splitlines()
    assert table[0].split() == ["test", "acc", "examples/s", "epochs"]
    assert table[1].split() == ["ours", "0.812", "1,234", "1"]
    assert table[2].split() == ["book,", "median", "0.844", "3,200", "10"]
    text = "\n".join(table)
    assert "d2l-ai/d2l-zh-pytorch-slides" in text and "2021-05-11 for the other models to 2023-08-18" in text
    assert "runs stuck at 10% (chance): 7 of 74" in text
    with pytest.raises(KeyError, match="no Fashion-MNIST result"):
        book.versus_book(history, "lenet5000")


def test_layer_dropdowns_name_the_type_and_offer_each_tensor_once():
    """VGG's block "0" outputs the very tensor of its pool "0.2": one entry, labelled with types, in
    every layer menu (feature maps, filters, Grad-CAM, receptive field)."""
    from torch import nn

    from d2lcnn import viz
    from d2lcnn.models.vgg import vgg_block

    net = nn.Sequential(vgg_block(1, 1, 4), vgg_block(1, 4, 8), nn.Flatten(), nn.Linear(8 * 7 * 7, 10))
    fm = lesson.training_data(train.Recipe(resize=28), subset=1, test_subset=1, device="cpu")
    maps = viz.feature_maps(net, fm, n_images=2)
    labels = [label for label, _ in maps.layer.options]
    assert labels == ["0.0 · Conv2d", "0.1 · ReLU", "0.2 · MaxPool2d", "1.0 · Conv2d", "1.1 · ReLU",
                      "1.2 · MaxPool2d"], labels
    assert viz.feature_maps(net, fm, layer="1", n_images=2).layer.value == "1.2"   # the block: its pool
    maps.layer.value = "1.0"
    assert maps.error is None and maps.redraws == 2
    filters = viz.filters(net)
    assert [label for label, _ in filters.layer.options] == ["0.0 · Conv2d", "1.0 · Conv2d"]
    cam, field = viz.cam(net, fm, n_images=2), viz.receptive_field(net, fm, n_images=1)     # the same menus
    assert [label for label, _ in cam.layer.options] == labels and cam.layer.value == "1.0"
    assert [label for label, _ in field.layer.options] == labels and field.layer.value == "0.0"
    assert viz.receptive_field(net, fm, layer="1", n_images=1).layer.value == "1.2"   # the block: its pool
    assert viz.cam(net, fm, layer="0", n_images=1).layer.value == "0.2"
    for widget in (cam, field):
        widget.layer.value = "1.1"
        assert widget.error is None and widget.redraws == 2


def test_the_sliding_window_widget_follows_its_controls():
    """01_convolution's widget: every kernel/padding/stride keeps the position in range and redraws."""
    matplotlib.use("Agg")
    cells = code_cells(next(CHAPTERS.glob("01_*.ipynb")))
    namespace: dict = {}
    run_cells([cell_with(cells, "import torch"), cell_with(cells, "def out_size"),
               cell_with(cells, "def draw_sliding_window")], namespace)
    window, out_size = namespace["window"], namespace["out_size"]
    for k, p, s in [(5, 0, 3), (1, 2, 1), (3, 1, 2), (5, 2, 3)]:
        window.kernel.value, window.padding.value, window.stride.value = k, p, s
        m = out_size(6, k, p, s)
        assert window.position.max == m * m - 1
        window.position.value = window.position.max
        assert window.error is None, window.error
    assert window.redraws > 8 and window.output.outputs[0]["data"]["image/png"]


def test_lesson_01_trains_by_hand_where_the_data_is(monkeypatch):
    """Lesson 01's data lands on the default device (CUDA on Colab, MPS on a Mac): its hand-written
    loop must move the network there. CI has only a CPU, so the data goes to the meta device here,
    standing in for a GPU: a network left on the CPU fails with a device mismatch, as on Colab."""
    monkeypatch.setenv("D2LCNN_QUICK", "1")
    monkeypatch.setattr("d2lcnn.data.default_device", lambda device=None: torch.device("meta"))
    item = torch.Tensor.item          # a meta tensor has no values: its loss and counts read as 0
    monkeypatch.setattr(torch.Tensor, "item", lambda self: 0.0 if self.is_meta else item(self))
    matplotlib.use("Agg")
    cells = code_cells(next(CHAPTERS.glob("01_*.ipynb")))
    namespace: dict = {}
    run_cells([cell_with(cells, "import dataclasses"), cell_with(cells, "def small_cnn"),
               cell_with(cells, "def train_by_hand"), cell_with(cells, "hand_acc = train_by_hand(")], namespace)
    assert namespace["fm"].device.type == "meta", "the data should be on the stand-in device"
    assert {p.device.type for p in namespace["by_hand"].parameters()} == {"meta"}
    assert set(namespace["initial"]) == set(namespace["by_hand"].state_dict()), "the starting weights, kept"
