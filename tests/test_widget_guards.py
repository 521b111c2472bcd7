"""The pictures and widgets refuse what they cannot draw, when they are made, in words.

Each case was seen to fail on the old code (an ``IndexError`` from deep inside, a rectangle of
negative width, another channel shown quietly); each test asserts the refusal's class, the key
words of its message (what was received, what is allowed, what to do) and that no figure was
left open and no hook left on the model.
"""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn

from d2lcnn import data, models, train, viz

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


@pytest.fixture(scope="module")
def fm():
    """Ten test images (one per class), 28x28."""
    return data.FashionMNIST(batch_size=10, device="cpu", subset=1, test_subset=1)


@pytest.fixture(scope="module")
def image(fm):
    return fm.to_float(fm.test_images[:1])[0]


@pytest.fixture
def lenet():
    return models.build("lenet")


def flat():
    """A fully connected network: no convolution, nothing image-shaped inside."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def refused(error, call, *words):
    """``call()`` raises ``error`` whose message holds every one of ``words``; nothing is left open."""
    figures = plt.get_fignums()
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert plt.get_fignums() == figures, "a refused picture left a figure open"
    return message


# -- one guard: a model without convolutions ----------------------------------------------------

NO_CONV = {
    "show_filters": lambda net, fm, image: viz.show_filters(net),
    "filters": lambda net, fm, image: viz.filters(net),
    "show_feature_maps": lambda net, fm, image: viz.show_feature_maps(net, image, "1"),
    "feature_maps": lambda net, fm, image: viz.feature_maps(net, fm),
    "show_receptive_field": lambda net, fm, image: viz.show_receptive_field(net, image, "1"),
    "receptive_field": lambda net, fm, image: viz.receptive_field(net, fm),
    "Replay": lambda net, fm, image: viz.Replay(fm).snapshot(net, 0, None),
    "cam": lambda net, fm, image: viz.cam(net, fm),
}


@pytest.mark.parametrize("picture", list(NO_CONV))
def test_a_model_without_convolutions_is_refused_by_one_guard(picture, fm, image):
    net = flat()
    message = refused(viz.NoConvMaps, lambda: NO_CONV[picture](net, fm, image),
                      f"{picture}: this model has no convolution with an image-shaped", "0 (Flatten)",
                      "1 (Linear)", "models.build('lenet')")
    assert issubclass(viz.NoConvMaps, ValueError) and "IndexError" not in message
    assert no_hooks(net)


def test_replay_refuses_a_model_without_convolutions_before_training(fm):
    net = flat()
    trainer = train.Trainer(net, data=fm, recipe=train.Recipe.modern("lenet", epochs=1), callbacks=[viz.Replay(fm)])
    weights = net[1].weight.detach().clone()          # as the Trainer initialised them
    with pytest.raises(viz.NoConvMaps, match="Replay: this model has no convolution"):
        trainer.fit()
    assert not trainer.history and torch.equal(net[1].weight, weights), "refused before any step"


# -- ranges, checked when the picture or widget is made ----------------------------------------

def test_a_unit_outside_the_layer_is_refused(lenet, fm, image):
    for unit in [(100, 100), (-1, 3), (3, 28)]:
        refused(viz.OutOfRange, lambda: viz.show_receptive_field(lenet, image, "0", unit=unit),
                f"unit={unit!r} is out of range", "layer '0' outputs 28x28 units", "row in 0..27",
                "column in 0..27", "leave unit out for the centre unit (14, 14)")
    refused(viz.OutOfRange, lambda: viz.receptive_field(lenet, fm, layer="5", unit=(4, 5)),
            "unit=(4, 5) is out of range", "layer '5' outputs 5x5 units", "centre unit (2, 2)")
    refused(viz.VizError, lambda: viz.show_receptive_field(lenet, image, "0", unit=5),
            "unit must be a (row, column) pair", "got 5")
    assert viz.receptive_field(lenet, fm, layer="5", unit=(4, 0)).row.value == 4, "a unit inside is kept"
    assert issubclass(viz.OutOfRange, IndexError) and issubclass(viz.OutOfRange, ValueError)


def test_a_channel_the_layer_lacks_is_refused(lenet, image):
    for channel in (999, 6, -1):
        refused(viz.OutOfRange, lambda: viz.show_feature_maps(lenet, image, "0", channel=channel),
                f"channel={channel} is out of range", "layer '0' outputs 6 channels", "must be in 0..5")
    fig = viz.show_feature_maps(lenet, image, "0", channel=5)
    assert fig.texts[2].get_text() == "channel 5"
    plt.close(fig)
    refused(viz.OutOfRange, lambda: viz.show_filters(lenet, "3", in_channel=9),
            "in_channel=9 is out of range", "layer '3' have 6 input channel(s)", "0..5")


@pytest.mark.parametrize("widget", ["feature_maps", "receptive_field", "cam"])
@pytest.mark.parametrize("n_images", [0, 11, -3])
def test_more_images_than_the_data_holds_or_none_are_refused(widget, n_images, lenet, fm):
    refused(viz.OutOfRange, lambda: getattr(viz, widget)(lenet, fm, n_images=n_images),
            f"n_images={n_images} is out of range", "the data holds 10 test images", "must be in 1..10",
            "leave n_images out")


def test_n_images_must_be_a_whole_number_and_the_default_fits_small_data(lenet, fm):
    refused(viz.VizError, lambda: viz.feature_maps(lenet, fm, n_images=2.5), "n_images=2.5 is not a whole number")
    assert viz.feature_maps(lenet, fm).image.max == 9, "default: 32 or all there are"
    assert viz.receptive_field(lenet, fm).image.max == 7, "default: 8"


@pytest.mark.parametrize("target", [10, -2, 1000])
def test_a_class_the_model_lacks_is_refused(target, lenet, image):
    words = (f"target={target} is out of range", "the model outputs 10 class scores", "must be in 0..9",
             "None for the predicted class")
    refused(viz.OutOfRange, lambda: viz.show_cam(lenet, image, target=target), *words)
    refused(viz.OutOfRange, lambda: viz.gradcam(lenet, image, target), *words)
    refused(viz.OutOfRange, lambda: viz.saliency(lenet, image, target), *words)
    assert no_hooks(lenet)


def test_a_true_label_outside_the_classes_is_refused(lenet, image):
    refused(viz.OutOfRange, lambda: viz.show_cam(lenet, image, label=10), "label=10 is out of range",
            "Fashion-MNIST has 10 classes", "0..9", "data.test_labels[i]")


def test_replay_image_and_snapshot_numbers_are_checked(lenet, fm):
    for index in (10, -1):
        refused(viz.OutOfRange, lambda: viz.Replay(fm, image_index=index), f"image_index={index} is out of range",
                "the data holds 10 test images", "must be in 0..9")
    replay = viz.Replay(fm, image_index=9)
    refused(viz.VizError, lambda: viz.show_replay(replay), "no snapshot yet", "callbacks")
    refused(viz.VizError, lambda: viz.replay(replay), "no snapshot yet")
    replay.snapshot(lenet, 0, None)
    replay.snapshot(lenet, 1, 0.5)
    for index in (2, -3, 99):
        refused(viz.OutOfRange, lambda: viz.show_replay(replay, index), f"index={index} is out of range",
                "the replay holds 2 snapshots", "must be in -2..1")
    plt.close(viz.show_replay(replay, -2))


# -- layers --------------------------------------------------------------------------------------

def test_an_unknown_layer_lists_the_layers_everywhere(lenet, fm, image):
    words = ("no layer 'nosuch'", "Its layers: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11.",
             "image-shaped (N, C, H, W) output: 0, 1, 2, 3, 4, 5.")
    for call in (lambda: viz.feature_maps(lenet, fm, layer="nosuch"),
                 lambda: viz.show_feature_maps(lenet, image, "nosuch"),
                 lambda: viz.receptive_field(lenet, fm, layer="nosuch"),
                 lambda: viz.Replay(fm, layer="nosuch").snapshot(lenet, 0, None)):
        message = refused(viz.UnknownLayer, call, *words)
        assert not message.startswith("'"), "the message as written, not KeyError's quoted repr"
    assert issubclass(viz.UnknownLayer, KeyError) and issubclass(viz.UnknownLayer, ValueError)


def test_a_layer_of_the_wrong_kind_is_named_with_the_ones_that_fit(lenet, fm):
    replay = viz.Replay(fm, layer="7")
    refused(viz.WrongLayer, lambda: replay.snapshot(lenet, 0, None), "layer '7' (Linear) is not",
            "the model's: 0, 1, 2, 3, 4, 5")
    assert replay.filter_layer is None and not replay.snapshots, "nothing recorded or chosen"
    refused(viz.WrongLayer, lambda: viz.filters(lenet, layer="1"), "layer '1' (Sigmoid) is not a convolution",
            "the model's: 0, 3")


# -- issue 26: a count of 0, an image the model cannot take, a model without weights -------------

def test_max_filters_of_zero_is_refused(lenet):
    for bad in (0, -3, 2.5):
        refused(viz.VizError, lambda: viz.show_filters(lenet, max_filters=bad),
                f"max_filters must be a whole number of at least 1, got {bad!r}", "how many of the layer's filters")
    plt.close(viz.show_filters(lenet, max_filters=2))


@pytest.mark.parametrize("bad, words", [
    (None, ("image must be a tensor", "got NoneType None", "data.sample(8)")),
    (torch.zeros(3, 28, 28), ("an image of 3 channels, 28x28 does not fit this model", "layer '0'")),
    (torch.zeros(1, 32, 32), ("an image of 1 channel, 32x32 does not fit this model", "layer '7'")),
    (torch.zeros(1, 1, 28, 28), ("got shape (1, 1, 28, 28) (a batch of one: pass image[0])",)),
])
def test_show_feature_maps_refuses_an_image_the_model_cannot_take(bad, words, lenet):
    refused(viz.VizError, lambda: viz.show_feature_maps(lenet, bad, "0"), "show_feature_maps", *words)
    assert no_hooks(lenet)


def test_a_model_on_the_meta_device_is_refused(image):
    with torch.device("meta"):
        net = models.build("lenet")
    for call in (lambda: viz.show_filters(net), lambda: viz.show_feature_maps(net, image, "0"),
                 lambda: viz.capture(net, image[None])):
        refused(viz.VizError, call, "on the meta device", "no weights", "to_empty(device='cpu')")
    assert no_hooks(net)
