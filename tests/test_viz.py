"""d2lcnn.viz: capture hygiene, every widget on a plain, a residual and a branching network,
receptive fields checked by hand, attribution maps of the input's size, one redraw per move."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from d2lcnn import data, models, train, viz
from d2lcnn.viz.receptive import field_box

NETWORKS = {"lenet": 28, "resnet18": 64, "googlenet": 64}     # 64: the fashion configs take 96, but any size works


@pytest.fixture(scope="module")
def datasets():
    return {size: data.FashionMNIST(batch_size=32, resize=size, device="cpu", subset=1, test_subset=1)
            for size in {28, 64, 224}}


@pytest.fixture(scope="module")
def nets():
    return {name: models.build(name) for name in NETWORKS}


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in model.modules())


def has_image(widget):
    return len(widget.output.outputs) == 1 and "image/png" in widget.output.outputs[0]["data"]


def png(widget):
    return widget.output.outputs[0]["data"]["image/png"]


def other(widget, control):
    """An option of a menu other than the one chosen."""
    menu = getattr(widget, control)
    values = [o[1] if isinstance(o, tuple) else o for o in menu.options]   # (label, value) pairs too
    return next(v for v in values if v != menu.value)


def moves_redraw(widget, control, value):
    """Set a control from code: the Output holds a new image, drawn exactly once."""
    assert has_image(widget)
    before, count = png(widget), widget.redraws
    getattr(widget, control).value = value
    assert widget.error is None, widget.error
    assert has_image(widget) and png(widget) != before, (control, value)
    assert widget.redraws == count + 1, f"{control}={value!r} redrew {widget.redraws - count} times"


# -- small networks of the shapes the course meets ------------------------------------------------

class Dense(nn.Module):
    """DenseNet-style: each layer's output concatenated to its input."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.layer1 = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.layer2 = nn.Sequential(nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
        self.transition = nn.Sequential(nn.Conv2d(12, 6, 1), nn.AvgPool2d(2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 10))

    def forward(self, x):
        x = self.stem(x)
        x = torch.cat([x, self.layer1(x)], 1)
        x = torch.cat([x, self.layer2(x)], 1)
        return self.head(self.transition(x))


class Squeeze(nn.Module):
    """SENet-style: a map scaled per channel by weights computed from the whole map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 4, 1), nn.Sigmoid())
        self.after = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.head(self.after(x * self.se(x)))


def small_224():
    """A cheap network for 224x224 inputs, with in-place ReLUs and BatchNorm."""
    return nn.Sequential(nn.Conv2d(1, 8, 11, stride=4, padding=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2), nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(inplace=True),
                         nn.MaxPool2d(3, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


# -- capture -----------------------------------------------------------------------------------

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


def test_capture_restores_every_submodule_mode_and_batchnorm_statistics():
    net = Dense().train()
    net.layer1[0].eval()                       # a layer frozen in eval mode on purpose
    stats = net.layer2[0].running_mean.clone()
    viz.capture(net, torch.randn(2, 1, 16, 16))
    assert net.training and net.layer2[0].training and not net.layer1[0].training
    assert torch.equal(net.layer2[0].running_mean, stats), "ran in eval mode: statistics untouched"


def test_other_passes_clean_up_after_an_error():
    net = models.build("lenet").train()
    bad = torch.zeros(3, 28, 28)                # three channels for a one-channel network
    for call in (lambda: viz.receptive_fields(net, (1, 3, 28, 28)), lambda: viz.gradcam(net, bad, 0, "3"),
                 lambda: viz.saliency(net, bad, 0)):
        with pytest.raises(RuntimeError):
            call()
        assert net.training and no_hooks(net)


def test_unknown_layer_is_a_clear_error(datasets):
    with pytest.raises(KeyError, match="no layer 'features.3'.*Its layers: 0, 1, 2"):
        viz.get_layer(models.build("lenet"), "features.3")
    with pytest.raises(KeyError, match="Did you mean 'b3.0.branch2'"):
        viz.get_layer(models.build("googlenet"), "b3.0.brnch2")
    lenet = models.build("lenet")
    with pytest.raises(KeyError, match="Did you mean '3'"):
        viz.feature_maps(lenet, datasets[28], layer="3 ")
    with pytest.raises(ValueError, match=r"layer '1' \(Sigmoid\) is not a convolution.*the model's: 0, 3"):
        viz.filters(lenet, layer="1")
    with pytest.raises(ValueError, match="image-shaped"):
        viz.show_feature_maps(lenet, torch.zeros(1, 28, 28), "7")


def test_only_image_shaped_layers_are_offered(nets, datasets):
    cache = viz.ActivationCache(nets["lenet"], datasets[28].to_float(datasets[28].test_images[:2]))
    assert cache.names == ["0", "1", "2", "3", "4", "5"]
    names = viz.ActivationCache(nets["googlenet"], datasets[64].to_float(datasets[64].test_images[:1])).names
    assert "b3.0.branch2" in names and "b3.0" in names and "fc" not in names


def test_activation_cache_runs_the_model_once_per_image(datasets):
    net = models.build("lenet")
    calls = []
    net.register_forward_pre_hook(lambda module, inputs: calls.append(1))
    widget = viz.feature_maps(net, datasets[28], n_images=3)
    assert len(calls) == 1
    for control, value in [("channel", 3), ("layer", "3"), ("channel", 7), ("layer", "2")]:
        moves_redraw(widget, control, value)
    assert len(calls) == 1, "slider and menu moves redraw from the cache"
    moves_redraw(widget, "image", 2)
    assert len(calls) == 2


# -- widgets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_widget_draws_and_redraws(name, nets, datasets, capsys):
    net, fm = nets[name], datasets[NETWORKS[name]]
    net.train()
    filters = viz.filters(net)
    maps = viz.feature_maps(net, fm, n_images=3)
    mistakes = viz.mistakes(net, fm, limit=20)
    cam = viz.cam(net, fm, n_images=2)
    rf = viz.receptive_field(net, fm, n_images=2)
    with torch.no_grad():
        predicted = int(net.eval()(fm.to_float(fm.test_images[:1])).argmax())
    net.train()
    spatial = [r["name"] for r in viz.receptive_fields(net, (1, 1, NETWORKS[name], NETWORKS[name]))
               if min(r["size"]) > 1]
    deeper = next(n for n in viz.conv_layers(net)[1:] if viz.get_layer(net, n).kernel_size != (1, 1))
    for widget, control, value in [(filters, "layer", deeper),
                                   (filters, "in_channel", 2),
                                   (maps, "layer", maps.layer.options[-1][1]),
                                   (maps, "channel", 1),
                                   (maps, "image", 2),
                                   (mistakes, "view", "normalised"),
                                   (mistakes, "view", "mistakes"),
                                   (cam, "target", (predicted + 1) % 10),
                                   (cam, "image", 1),
                                   (cam, "layer", other(cam, "layer")),
                                   (rf, "layer", next(v for _, v in reversed(rf.layer.options) if v in spatial)),
                                   (rf, "row", 0),
                                   (rf, "image", 1)]:
        moves_redraw(widget, control, value)
    assert {w._dom_classes for w in (filters, maps, mistakes, cam, rf)} == {
        ("d2lcnn-filters",), ("d2lcnn-feature-maps",), ("d2lcnn-mistakes",), ("d2lcnn-cam",),
        ("d2lcnn-receptive-field",)}
    assert net.training and no_hooks(net)
    assert capsys.readouterr().out == "", "nothing on stdout: nbval would count it as output"


@pytest.mark.parametrize("make, size", [(Dense, 28), (Squeeze, 28), (small_224, 224)])
def test_widgets_on_concatenations_channel_weights_and_224(make, size, datasets):
    net, fm = make(), datasets[size]
    for widget, control in [(viz.filters(net), "layer"), (viz.feature_maps(net, fm, n_images=2), "layer"),
                            (viz.cam(net, fm, n_images=2), "layer"),
                            (viz.receptive_field(net, fm, n_images=1), "layer")]:
        moves_redraw(widget, control, other(widget, control))
    assert no_hooks(net)


def test_feature_maps_image_by_class(datasets):
    fm = datasets[28]
    widget = viz.feature_maps(models.build("lenet"), fm, n_images=10)
    labels = fm.test_labels[:10]
    assert widget.by_class.value == int(labels[0])
    target = int(labels[5])
    moves_redraw(widget, "by_class", target)
    assert widget.image.value == int((labels == target).nonzero()[0])
    moves_redraw(widget, "image", 7)
    assert widget.by_class.value == int(labels[7]), "the class menu follows the image"


def test_layer_change_resets_dependent_sliders_in_one_redraw(datasets):
    net = models.build("lenet")
    maps = viz.feature_maps(net, datasets[28], layer="3", n_images=2)
    maps.channel.value = 15
    moves_redraw(maps, "layer", "0")                       # 6 channels: the slider shrinks
    assert maps.channel.max == 5 and maps.channel.value == 5
    rf = viz.receptive_field(net, datasets[28], layer="0", n_images=1)
    moves_redraw(rf, "layer", "5")
    assert (rf.row.max, rf.row.value, rf.col.value) == (4, 2, 2)
    filters = viz.filters(net, layer="3")
    filters.in_channel.value = 4
    moves_redraw(filters, "layer", "0")
    assert (filters.in_channel.max, filters.in_channel.value, filters.in_channel.disabled) == (0, 0, True)


def test_a_failing_redraw_shows_its_message(datasets, monkeypatch):
    widget = viz.filters(models.build("lenet"))
    monkeypatch.setattr(sys.modules["d2lcnn.viz.filters"], "show_filters", lambda *a, **k: 1 / 0)
    widget.layer.value = "3"
    assert isinstance(widget.error, ZeroDivisionError)
    assert widget.output.outputs[0]["name"] == "stderr" and "ZeroDivisionError" in widget.output.outputs[0]["text"]


def test_one_by_one_convolutions_show_as_a_matrix():
    net = models.build("nin")
    fig = viz.show_filters(net, "0.2")
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (96, 96) and "1x1 kernels" in fig.axes[0].get_title()
    low, high = fig.axes[0].images[0].get_clim()
    assert low == -high, "colour scale centred at zero"


def test_default_cam_layer_is_the_last_spatial_conv_or_its_block(nets):
    def default(name, size):
        return viz.attribution.default_cam_layer(models.build(name) if name not in nets else nets[name],
                                                 torch.zeros(1, size, size))
    assert default("lenet", 28) == "3"
    assert default("resnet18", 96) == "b5"            # the last stage: shortcut and main path
    assert default("googlenet", 96) == "b5.1"          # the last Inception block: all branches
    assert default("alexnet", 224) == "10"


# -- replay ------------------------------------------------------------------------------------

def test_replay_records_each_epoch_and_plays(capsys):
    fm = data.FashionMNIST(batch_size=50, device="cpu", subset=20, test_subset=5)
    replay = viz.Replay(fm, layer="3")
    t = train.Trainer(models.build("lenet"), data=fm, recipe=train.Recipe.modern("lenet", epochs=2),
                      callbacks=[replay])
    t.fit()
    assert [s["epoch"] for s in replay.snapshots] == [0, 1, 2]
    assert replay.snapshots[0]["test_acc"] is None and replay.snapshots[-1]["test_acc"] == t.history[-1]["test_acc"]
    assert replay.filter_layer == "0" and replay.snapshots[0]["maps"].shape == (16, 10, 10)
    assert not torch.equal(replay.snapshots[0]["filters"], replay.snapshots[-1]["filters"])
    widget = viz.replay(replay)
    assert widget._dom_classes == ("d2lcnn-replay",) and has_image(widget)
    assert widget.play.max == widget.epoch.max == 2
    moves_redraw(widget, "epoch", 2)
    assert capsys.readouterr().out == ""


# -- receptive fields --------------------------------------------------------------------------

def test_receptive_fields_by_hand():
    lenet = {r["name"]: r for r in viz.receptive_fields(models.build("lenet"), (1, 1, 28, 28))}
    # conv 5x5 -> 5; avg pool 2 -> 6 (jump 2); conv 5x5 -> 6 + 4*2 = 14; pool -> 14 + 1*2 = 16 (jump 4)
    assert [lenet[n]["rf"] for n in "0235"] == [5, 6, 14, 16]
    assert [lenet[n]["jump"] for n in "0235"] == [1, 2, 2, 4]
    # centre of unit 0: the padded conv keeps 0; pool (0 + 1)/2 = 0.5; conv 0.5 + 2*2 = 4.5; pool 5.5
    assert [lenet[n]["start"] for n in "0235"] == [0, 0.5, 4.5, 5.5]
    block = models.vgg.vgg_block(3, 1, 4)
    rf = {r["name"]: r["rf"] for r in viz.receptive_fields(block, (1, 1, 28, 28))}
    assert (rf["0"], rf["2"], rf["4"], rf["6"]) == (3, 5, 7, 8)     # two 3x3 = 5x5, three = 7x7


def test_receptive_field_of_branches_takes_the_widest():
    inception = models.googlenet.Inception(1, 2, (2, 2), (2, 2), 2)
    rows = {r["name"]: r["rf"] for r in viz.receptive_fields(inception, (1, 1, 16, 16))}
    assert rows["branch1"] == 1 and rows["branch2"] == 3 and rows["branch3"] == 5 and rows["branch4"] == 3
    resnet = {r["name"]: r["rf"] for r in viz.receptive_fields(models.build("resnet18"), (1, 1, 96, 96))}
    # stem: 7x7 stride 2 -> 7, max pool 3 stride 2 -> 11 (jump 4); one block's two 3x3: 11 + 2*4 + 2*4
    assert (resnet["b1"], resnet["b2.0"]) == (11, 27)


def test_receptive_field_of_concatenations_and_channel_weights():
    dense = {r["name"]: r["rf"] for r in viz.receptive_fields(Dense(), (1, 1, 16, 16))}
    assert (dense["stem"], dense["layer1"], dense["layer2"], dense["transition"]) == (3, 5, 7, 8)
    se = {r["name"]: r["rf"] for r in viz.receptive_fields(Squeeze(), (1, 1, 16, 16))}
    assert se["after"] == 5, "SE's per-channel weights do not widen the field"


def test_factorised_convolutions_have_a_field_per_axis():
    net = nn.Sequential(nn.Conv2d(1, 2, (1, 7), padding=(0, 3)), nn.Conv2d(2, 2, (7, 1), padding=(3, 0)),
                        nn.Conv2d(2, 2, 3, dilation=2, padding="same"))
    rows = viz.receptive_fields(net, (1, 1, 20, 20))
    assert [r["rf_hw"] for r in rows] == [(1, 7), (7, 7), (11, 11)]


def test_receptive_field_box_is_clipped_to_the_image():
    row = {r["name"]: r for r in viz.receptive_fields(models.build("lenet"), (1, 1, 28, 28))}["5"]
    assert field_box(row, (0, 0), (28, 28)) == (-0.5, -0.5, 13.5, 13.5)     # 16 wide, centred at 5.5
    assert field_box(row, (4, 4), (28, 28)) == (13.5, 13.5, 27.5, 27.5)     # 5.5 + 16 = 21.5 -> clipped
    fig = viz.show_receptive_field(models.build("lenet"), torch.zeros(1, 28, 28), "5", (2, 2))
    assert fig.axes[0].patches[0].get_width() == 16


# -- attribution, curves -----------------------------------------------------------------------

def test_attribution_maps_have_the_input_size(nets, datasets):
    for name, size in [*NETWORKS.items(), ("small_224", 224)]:
        net = nets.get(name) or small_224()
        image = datasets[size].to_float(datasets[size].test_images[:1])[0]
        cam, sal = viz.gradcam(net, image, target=3), viz.saliency(net, image, target=3)
        assert cam.shape == sal.shape == image.shape[-2:]
        assert 0 <= cam.min() and cam.max() <= 1 and no_hooks(net)


def test_history_curves_overlay():
    fig = viz.plot_history({"a": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.6}],
                            "b": [{"epoch": 1, "train_loss": 0.9, "train_acc": 0.6, "test_acc": 0.7}]})
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert "a test acc" in labels and "b train acc" in labels
    from d2lcnn import curves
    assert viz.plot_history is curves.plot_history


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_widgets_on_the_gpu_draw_the_cpu_pictures(datasets):
    fm = data.FashionMNIST(resize=28, device="cuda", subset=1, test_subset=1)
    net = models.build("lenet").cuda()
    for make in (lambda: viz.feature_maps(net, fm, n_images=2), lambda: viz.cam(net, fm, n_images=2),
                 lambda: viz.mistakes(net, fm), lambda: viz.receptive_field(net, fm, n_images=1),
                 lambda: viz.filters(net)):
        assert has_image(make())
    gpu = viz.capture(net, fm.to_float(fm.test_images[:1]), ["3"])["3"]
    cpu = viz.capture(net.cpu(), datasets[28].to_float(datasets[28].test_images[:1]), ["3"])["3"]
    assert gpu.device.type == "cpu" and torch.allclose(gpu, cpu, atol=1e-4)
