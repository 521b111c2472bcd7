"""d2lcnn.viz: capture hygiene, every widget on a plain, a residual and a branching network,
receptive fields checked by hand, attribution maps of the input's size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lcnn import data, models, train, viz

NETWORKS = {"lenet": 28, "resnet18": 96, "googlenet": 96}


@pytest.fixture(scope="module")
def datasets():
    return {name: data.FashionMNIST(batch_size=32, resize=size, device="cpu", subset=3, test_subset=3)
            for name, size in NETWORKS.items()}


@pytest.fixture(scope="module")
def nets():
    return {name: models.build(name) for name in NETWORKS}


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def has_image(widget):
    return len(widget.output.outputs) == 1 and "image/png" in widget.output.outputs[0]["data"]


def png(widget):
    return widget.output.outputs[0]["data"]["image/png"]


def test_capture_clones_what_inplace_relu_would_overwrite():
    conv = nn.Conv2d(1, 2, 3)
    net = nn.Sequential(conv, nn.ReLU(inplace=True))
    x = torch.randn(1, 1, 8, 8)
    acts = viz.capture(net, x, ["0", "1"])
    assert (acts["0"] < 0).any(), "the conv output keeps its negative values"
    assert (acts["1"] >= 0).all()
    assert torch.allclose(acts["0"], conv(x).detach())


def test_capture_restores_mode_and_hooks_even_on_error():
    net = models.build("lenet").train()
    with pytest.raises(RuntimeError):
        viz.capture(net, torch.zeros(1, 3, 28, 28))
    assert net.training and no_hooks(net)
    viz.capture(net, torch.zeros(1, 1, 28, 28))
    assert net.training and no_hooks(net)


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(KeyError, match="no layer 'features.3'.*Its layers: 0, 1, 2"):
        viz.get_layer(models.build("lenet"), "features.3")
    with pytest.raises(KeyError, match="Did you mean 'b3.0.branch2'"):
        viz.get_layer(models.build("googlenet"), "b3.0.brnch2")


def test_only_image_shaped_layers_are_offered(nets, datasets):
    cache = viz.ActivationCache(nets["lenet"], datasets["lenet"].to_float(datasets["lenet"].test_images[:2]))
    assert cache.names == ["0", "1", "2", "3", "4", "5"]
    names = viz.ActivationCache(nets["googlenet"], datasets["googlenet"].to_float(
        datasets["googlenet"].test_images[:1])).names
    assert "b3.0.branch2" in names and "b3.0" in names and "fc" not in names


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_widget_draws_and_redraws(name, nets, datasets):
    net, fm = nets[name], datasets[name]
    net.train()
    filters = viz.filters(net)
    maps = viz.feature_maps(net, fm, n_images=4)
    mistakes = viz.mistakes(net, fm)
    cam = viz.cam(net, fm, n_images=4)
    rf = viz.receptive_field(net, fm)
    for widget, control, value in [(filters, "layer", viz.conv_layers(net)[1]),
                                   (maps, "layer", maps.layer.options[-1]),
                                   (maps, "image", 2),
                                   (mistakes, "view", "normalised"),
                                   (mistakes, "view", "mistakes"),
                                   (cam, "image", 3),
                                   (rf, "layer", rf.layer.options[-1])]:
        assert has_image(widget)
        before = png(widget)
        getattr(widget, control).value = value
        assert has_image(widget) and png(widget) != before, (name, control)
    assert {w._dom_classes[0] for w in (filters, maps, mistakes, cam, rf)} == {
        "d2lcnn-filters", "d2lcnn-feature-maps", "d2lcnn-mistakes", "d2lcnn-cam", "d2lcnn-receptive-field"}
    assert net.training and no_hooks(net)


def test_replay_records_each_epoch_and_plays():
    fm = data.FashionMNIST(batch_size=50, device="cpu", subset=20, test_subset=5)
    replay = viz.Replay(fm)
    t = train.Trainer(models.build("lenet"), data=fm, recipe=train.Recipe.modern("lenet", epochs=2),
                      callbacks=[replay])
    t.fit()
    assert [s["epoch"] for s in replay.snapshots] == [0, 1, 2]
    assert not torch.equal(replay.snapshots[0]["filters"], replay.snapshots[-1]["filters"])
    widget = viz.replay(replay)
    assert widget._dom_classes == ("d2lcnn-replay",) and has_image(widget)
    before = png(widget)
    widget.epoch.value = 2
    assert png(widget) != before


def test_receptive_fields_by_hand():
    lenet = {r["name"]: r["rf"] for r in viz.receptive_fields(models.build("lenet"), (1, 1, 28, 28))}
    # conv 5x5 -> 5; avg pool 2 -> 6; conv 5x5 at stride 2 -> 6 + 4*2 = 14; pool -> 16
    assert (lenet["0"], lenet["2"], lenet["3"], lenet["5"]) == (5, 6, 14, 16)
    block = models.vgg.vgg_block(3, 1, 4)
    rf = {r["name"]: r["rf"] for r in viz.receptive_fields(block, (1, 1, 28, 28))}
    assert (rf["0"], rf["2"], rf["4"], rf["6"]) == (3, 5, 7, 8)


def test_receptive_field_of_branches_takes_the_widest():
    inception = models.googlenet.Inception(1, 2, (2, 2), (2, 2), 2)
    rows = {r["name"]: r["rf"] for r in viz.receptive_fields(inception, (1, 1, 16, 16))}
    assert rows["branch1"] == 1 and rows["branch2"] == 3 and rows["branch3"] == 5


def test_attribution_maps_have_the_input_size(nets, datasets):
    for name in NETWORKS:
        image = datasets[name].to_float(datasets[name].test_images[:1])[0]
        assert viz.gradcam(nets[name], image, target=3).shape == image.shape[-2:]
        assert viz.saliency(nets[name], image, target=3).shape == image.shape[-2:]


def test_history_curves_overlay():
    fig = viz.plot_history({"a": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.6}],
                            "b": [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.6, "test_acc": 0.7}]})
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert "a test acc" in labels and "b train acc" in labels
