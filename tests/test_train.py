"""d2lcnn.train: recipes, the loop, interruption and resume, checkpoints, OOM, quick mode."""

from __future__ import annotations

import signal

import pytest
import torch
from torch import nn

from d2lcnn import curves, data, models, progress, train
from d2lcnn.models.lenet import classifier, conv_block
from d2lcnn.runtime import QUICK_ENV


@pytest.fixture(scope="module")
def small():
    """A small balanced subset: 60 training images per class, 20 test images per class."""
    return data.FashionMNIST(batch_size=50, device="cpu", subset=60, test_subset=20)


def make(small, **changes):
    recipe = train.Recipe.modern("lenet", epochs=2, **changes)
    return train.Trainer(models.build("lenet"), data=small, recipe=recipe, seed=1)


def weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def test_book_recipe_is_the_books():
    r = train.Recipe.book("lenet")
    assert (r.batch_size, r.lr, r.resize, r.epochs) == (256, 0.9, 28, 10)
    assert (r.momentum, r.weight_decay, r.schedule, r.init, r.augment, r.normalize) == (0.0, 0.0, "constant",
                                                                                       "xavier", False, False)
    assert train.Recipe.book("alexnet").resize == 224 and train.Recipe.modern("vgg11").resize == 224


def test_fit_records_history(small):
    t = make(small)
    t.fit()
    history = t.history
    assert [r["epoch"] for r in history] == [1, 2]
    for r in history:
        assert {"train_loss", "train_acc", "test_loss", "test_acc", "seconds", "examples_per_s", "lr"} <= r.keys()
        assert 0 <= r["test_acc"] <= 1 and r["examples_per_s"] > 0 and not r["interrupted"]
    assert history[1]["train_loss"] < history[0]["train_loss"]


def test_onecycle_schedule_warms_up_then_anneals():
    t = train.Trainer.__new__(train.Trainer)
    t.recipe = train.Recipe(lr=1.0, warmup=0.1, schedule="onecycle")
    rates = [t.lr_at(s, 100) for s in range(100)]
    assert rates[0] < rates[5] < rates[9] == pytest.approx(1.0)
    assert rates[50] < 1.0 and rates[-1] < 0.01


def interrupt_after(trainer, calls: int):
    """Send SIGINT to ourselves from inside the forward pass of the ``calls``-th step."""
    count = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            count["n"] += 1
            if count["n"] == calls:
                signal.raise_signal(signal.SIGINT)

    return trainer.model.register_forward_hook(hook)


def test_interrupt_keeps_model_and_history_and_resume_matches(small):
    uninterrupted = make(small)
    uninterrupted.fit()

    t = make(small)
    handle = interrupt_after(t, 7)  # 12 steps per epoch: stops mid-epoch 1
    t.fit()
    handle.remove()
    assert len(t.history) == 1 and t.history[0]["interrupted"] and t.history[0]["steps_done"] == 7
    assert t.epoch == 0
    t.fit()  # continues where it stopped
    finished = [r for r in t.history if not r["interrupted"]]
    assert [r["epoch"] for r in finished] == [1, 2]
    assert torch.allclose(weights(t), weights(uninterrupted), atol=1e-5)


def test_sigint_handler_is_restored(small):
    before = signal.getsignal(signal.SIGINT)
    make(small).fit(1)
    assert signal.getsignal(signal.SIGINT) is before


def test_checkpoint_round_trip(tmp_path, small):
    t = make(small)
    t.fit(1)
    path = t.save(tmp_path / "lenet.pt")
    fresh = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"))
    fresh.load(path)
    assert torch.equal(weights(fresh), weights(t))
    assert fresh.history == t.history and fresh.recipe == t.recipe and fresh.epoch == 1
    fresh.fit(1)
    assert fresh.history[-1]["epoch"] == 2


def test_checkpoint_of_another_architecture_is_refused(tmp_path, small):
    t = make(small)
    path = t.save(tmp_path / "lenet.pt")
    other = train.Trainer(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data=small)
    with pytest.raises(train.CheckpointError, match="checkpoint of 'lenet/fashion'.*'Sequential'.*missing 1.weight"):
        other.load(path)
    # The same shapes under another name are refused too: the name is the architecture.
    renamed = train.Trainer(models.build("lenet"), data=small, name="lenet/paper")
    before = weights(renamed)
    with pytest.raises(train.CheckpointError, match="checkpoint of 'lenet/fashion', but this model is 'lenet/paper'"):
        renamed.load(path)
    assert torch.equal(weights(renamed), before)
    wider = nn.Sequential(*conv_block(1, 8, padding=2), *conv_block(8, 16), *classifier(400))
    with pytest.raises(train.CheckpointError, match=r"0.weight: \(6, 1, 5, 5\) in the file, \(8, 1, 5, 5\)"):
        train.Trainer(wider, data=small).load(path)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, small, monkeypatch):
    t = make(small)
    path = t.save(tmp_path / "ckpt.pt")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        t.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_out_of_memory_message_names_the_batch(small):
    class Hungry(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            if self.training:  # a batch of training images does not fit; one image did, when checked
                raise train.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return self.fc(x.flatten(1))

    t = train.Trainer(Hungry(), data=small, recipe=train.Recipe(epochs=1))
    with pytest.raises(train.TrainingOutOfMemory, match="batch_size=50.*Try a smaller batch"):
        t.fit()
    assert t.model is not None and isinstance(t.history, list)


def test_quick_mode_caps_the_work(monkeypatch):
    monkeypatch.setenv(QUICK_ENV, "1")
    t = train.Trainer(models.build("lenet"), recipe=train.Recipe.book("lenet"), device="cpu")
    t.fit()
    assert len(t.history) == train.QUICK["epochs"]
    assert t.batch_size == train.QUICK["batch_size"]
    assert t._plan["steps"] == train.QUICK["steps"] and t.history[0]["quick"]


def test_xavier_and_kaiming_init_change_the_weights():
    net = models.build("lenet")
    before = net[0].weight.clone()
    train.init_weights(net, "kaiming")
    assert not torch.equal(before, net[0].weight) and torch.all(net[0].bias == 0)
    with pytest.raises(ValueError, match="init must be"):
        train.init_weights(net, "orthogonal")


def test_pytorch_init_gives_linear_layers_their_fan_in_scale_and_convnext_uses_it():
    """"kaiming" gives every Linear layer a classifier's std 0.01, too small for ConvNeXt's 1x1
    convolutions written as Linear layers; "pytorch" keeps each layer's own default, seeded."""
    def pointwise_std(how):
        torch.manual_seed(0)
        net = models.build("convnext")
        train.init_weights(net, how)
        return net.stage1[0].pwconv1.weight.std().item(), net.stage1[0].pwconv1.weight.clone()

    kaiming, _ = pointwise_std("kaiming")
    pytorch, first = pointwise_std("pytorch")
    _, again = pointwise_std("pytorch")
    fan_in = first.shape[1]
    assert abs(kaiming - 0.01) < 0.002 and abs(pytorch - 1 / (3 * fan_in) ** 0.5) < 0.2 / fan_in ** 0.5
    assert torch.equal(first, again)                       # the same seed, the same network
    assert train.Recipe.modern("convnext").init == "pytorch" and train.Recipe.modern("resnext").init == "kaiming"


def test_amp_dtype_off_cuda_is_bf16_on_cpus_that_have_it_else_none(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda: None)
    assert train.amp_dtype(torch.device("cpu")) is None and train.amp_dtype(torch.device("mps")) is None
    monkeypatch.setattr(train, "native_bf16", lambda: "AMX")
    assert train.amp_dtype(torch.device("cpu")) == torch.bfloat16


def stop_in_forward(trainer, calls: int):
    """Call ``trainer.stop()`` from inside the ``calls``-th forward pass; returns the hook's handle."""
    count = {"n": 0}

    def hook(module, inputs, output):
        count["n"] += 1
        if count["n"] == calls:
            trainer.stop()

    return trainer.model.register_forward_hook(hook)


def test_stop_from_code_without_a_signal(small):
    """``trainer.stop()`` (what a callback or a widget would call) stops after the current step."""
    t = make(small)
    handle = stop_in_forward(t, 3)
    t.fit()
    handle.remove()
    assert t.history[-1]["interrupted"] and t.history[-1]["steps_done"] == 3 and t.epoch == 0


def test_raw_keyboard_interrupt_still_records_the_partial_epoch(small):
    """A KeyboardInterrupt our handler did not turn into a flag stops at once, history kept."""
    t = make(small)
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 5:
                raise KeyboardInterrupt

    handle = t.model.register_forward_hook(hook)
    t.fit()
    handle.remove()
    record = t.history[-1]
    assert record["interrupted"] and record["steps_done"] == 4 and record["test_acc"] is None
    t.fit()
    assert [r["epoch"] for r in t.history if not r["interrupted"]] == [1, 2]


def test_checkpoint_saved_mid_epoch_resumes_where_it_stopped(tmp_path, small):
    uninterrupted = make(small)
    uninterrupted.fit()

    t = make(small)
    handle = interrupt_after(t, 16)  # epoch 2, step 4 of 12
    t.fit()
    handle.remove()
    path = t.save(tmp_path / "mid.pt")
    fresh = make(small)
    fresh.load(path)
    fresh.fit()
    assert fresh.epoch == 2 and [r["epoch"] for r in fresh.history if not r["interrupted"]] == [1, 2]
    assert torch.allclose(weights(fresh), weights(uninterrupted), atol=1e-5)


def test_notebook_mode_shows_bar_and_live_plot_and_prints_one_line(small, monkeypatch, capsys):
    """In a kernel: a progress bar and an Output with the live plot; on stdout only the compute path, no
    figure left open."""
    import ipywidgets
    import IPython.display
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(train, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    monkeypatch.setattr(curves.LiveCurves, "due", lambda self: True)  # redraw at every step here
    plt.close("all")
    trainer = make(small)
    trainer.fit(1)
    assert capsys.readouterr().out == f"{trainer.path}\n"
    outputs = [o for o in shown if isinstance(o, ipywidgets.Output)]
    assert len(outputs) == 1 and "d2lcnn-live-plot" in outputs[0]._dom_classes
    assert "image/png" in outputs[0].outputs[-1]["data"]
    assert plt.get_fignums() == []


def test_live_curves_keep_plotting_within_their_share_of_the_time(monkeypatch):
    """After a redraw that took c seconds the next one waits c / share (never under min_interval)."""
    import ipywidgets

    clock = iter(range(0, 1000, 2))                       # every reading of the clock: 0.2 s later
    monkeypatch.setattr(curves.time, "monotonic", lambda: next(clock) / 10)
    live = curves.LiveCurves(ipywidgets.Output(), share=0.04, min_interval=0.5)
    assert live.due()
    h = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "test_acc": 0.5} for e in (1, 2)]
    live.draw(h)                                          # took 0.2 s: the next waits 0.2 / 0.04 = 5 s
    assert live.interval == pytest.approx(5.0) and not live.due()
    live.draw(h)
    assert live.redraws == 2 and live.seconds == pytest.approx(0.4)
    assert len(live.fig.axes) == 2 and len(live.axes[0].lines) == 1  # one figure, cleared and redrawn
    fast = curves.LiveCurves(ipywidgets.Output(), share=1000.0, min_interval=0.5)
    fast.draw(h)
    assert fast.interval == 0.5                           # never more often than min_interval


def test_plot_history_two_panels_one_axes_and_given_axes():
    import matplotlib.pyplot as plt

    from d2lcnn.curves import plot_history

    h = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 10, "test_acc": 0.4 + e / 10,
          "interrupted": False} for e in (1, 2, 3)] + [{"epoch": 4, "train_loss": 0.1, "interrupted": True}]
    fig = plot_history(h)
    loss, acc = fig.axes
    assert [line.get_label() for line in loss.lines] == ["train loss"]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]  # the interrupted epoch is left out
    assert [line.get_label() for line in acc.lines] == ["train acc", "test acc"]
    plt.close(fig)

    fig, ax = plt.subplots()
    assert plot_history({"x": h, "y": h}, ax=ax) is fig and len(ax.lines) == 6
    plt.close(fig)
    fig, axes = plt.subplots(2, 1)
    plot_history(h, axes=axes)
    assert len(axes[0].lines) == 1 and len(axes[1].lines) == 2
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# Runs that go wrong say so (issue 10)
# ----------------------------------------------------------------------------------------------

def linear_net():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def test_nan_loss_stops_the_fit_and_puts_the_weights_back(small):
    recipe = train.Recipe(epochs=3, lr=1e38, schedule="constant", momentum=0.0, weight_decay=0.0,
                          clip_grad_norm=0.0, augment=False, normalize=False, init="none")
    t = train.Trainer(linear_net(), data=small, recipe=recipe)
    start = weights(t).clone()
    with pytest.raises(train.TrainingDiverged) as err:
        t.fit()
    message = str(err.value)
    assert "diverged in epoch 1" in message and "NaN or infinite" in message and "lower learning rate" in message
    assert "clip_grad_norm" in message
    assert torch.equal(weights(t), start) and torch.isfinite(weights(t)).all()
    assert len(t.history) == 1 and t.history[0]["diverged"] and t.history[0]["nonfinite_steps"] > 0
    assert t.epoch == 0


def test_stuck_at_chance_warns_once(small):
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet", lr=1e-3, epochs=3))
    with pytest.warns(train.TrainingWarning, match=r"test accuracy is 0\.\d+, about chance.*learning rate") as seen:
        t.fit()
    assert len([w for w in seen if "chance" in str(w.message)]) == 1


def test_a_control_run_meant_to_fail_can_silence_the_chance_warning(small, recwarn):
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet", lr=1e-3, epochs=3))
    t.warn_at_chance = False
    t.fit()
    assert t.history[-1]["test_acc"] < train.CHANCE                  # stuck, as in the test above
    assert not [w for w in recwarn if "chance" in str(w.message)]


def test_a_learning_run_does_not_warn(small):
    import warnings

    t = train.Trainer(linear_net(), data=small, recipe=train.Recipe(epochs=2, lr=0.1, init="kaiming"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", train.TrainingWarning)
        t.fit()
    assert t.history[-1]["test_acc"] > 0.5


def test_long_run_is_estimated_and_explained(small, monkeypatch):
    monkeypatch.setattr(train, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(train, "LONG_RUN_S", 0.0)
    t = make(small)
    # The advice must hold for a student already on a lesson's CPU setting (lesson 14's scaling runs).
    with pytest.warns(train.TrainingWarning, match=r"this fit will take about .* more on cpu.*steps left.*"
                                                   r"CPU setting, if you are not on it already"):
        t.fit(1)


def test_same_seed_same_network_biases_included(small):
    a = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"), seed=0)
    b = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"), seed=0)
    c = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"), seed=1)
    assert torch.equal(weights(a), weights(b)) and not torch.equal(weights(a), weights(c))


def test_a_trained_network_is_not_reinitialised_silently(small):
    t = make(small)
    t.fit(1)
    trained = weights(t).clone()
    # init='none' keeps the trained weights, without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", train.TrainingWarning)
        kept = train.Trainer(t.model, data=small, recipe=train.Recipe.modern("lenet", init="none"))
    assert torch.equal(weights(kept), trained)
    with pytest.warns(train.TrainingWarning, match="was trained already .* re-initialises its weights.*init='none'"):
        again = train.Trainer(t.model, data=small, recipe=train.Recipe.modern("lenet"))
    assert not torch.equal(weights(again), trained)


def test_fit_refuses_zero_epochs(small):
    with pytest.raises(ValueError, match="epochs must be a whole number of at least 1, got 0"):
        make(small).fit(0)


def test_interrupt_after_the_update_does_not_apply_it_twice(small):
    uninterrupted = make(small)
    uninterrupted.fit()
    t = make(small)
    calls = {"n": 0}

    def after_update(optimizer, args, kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt   # lands after the 5th update, before the loop counted it

    handle = t.optimizer.register_step_post_hook(after_update)
    t.fit()
    handle.remove()
    assert t.history[-1]["interrupted"] and t.history[-1]["steps_done"] == 5
    t.fit()
    assert torch.allclose(weights(t), weights(uninterrupted), atol=1e-5)


def test_second_ctrl_c_waits_for_the_step(small):
    """Two SIGINTs inside one step: the step is applied and counted, then the fit stops."""
    t = make(small)
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 4:
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)

    handle = t.model.register_forward_hook(hook)
    t.fit()
    handle.remove()
    assert t.history[-1]["interrupted"] and t.history[-1]["steps_done"] == 4


def test_interrupt_in_the_evaluation_keeps_the_epochs_training(small, monkeypatch):
    t = make(small)
    real = train.Trainer.evaluate
    calls = {"n": 0}

    def evaluate(self, limit=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(self, limit)

    monkeypatch.setattr(train.Trainer, "evaluate", evaluate)
    t.fit()
    record = t.history[-1]
    assert record["interrupted"] and record["stopped_in"] == "evaluation"
    assert record["train_loss"] is not None and record["lr"] is not None and t.epoch == 0
    t.fit()
    done = [r for r in t.history if not r["interrupted"]]
    assert [r["epoch"] for r in done] == [1, 2]
    assert done[0]["train_loss"] == pytest.approx(record["train_loss"])  # the whole epoch's loss


def test_busy_cpu_with_several_threads_is_explained(small, monkeypatch):
    monkeypatch.setattr(train, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(train.os, "getloadavg", lambda: (30.0, 30.0, 30.0))
    monkeypatch.setattr(train.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(train.torch, "get_num_threads", lambda: 2)
    with pytest.warns(train.TrainingWarning, match=r"this CPU is busy: load average 30 on 2 cores.*set_num_threads\(1\)"):
        make(small).fit(1)


def test_busy_cpu_with_one_thread_or_a_quiet_cpu_says_nothing(small, monkeypatch):
    import warnings

    monkeypatch.setattr(train, "ESTIMATE_AFTER_S", 0.0)
    monkeypatch.setattr(train.os, "cpu_count", lambda: 2)
    for load, threads in ((30.0, 1), (2.5, 2)):
        monkeypatch.setattr(train.os, "getloadavg", lambda load=load: (load, load, load))
        monkeypatch.setattr(train.torch, "get_num_threads", lambda threads=threads: threads)
        with warnings.catch_warnings():
            warnings.simplefilter("error", train.TrainingWarning)
            make(small).fit(1)


def test_quick_mode_applies_to_a_resumed_run(tmp_path, small, monkeypatch):
    """An interrupted full run resumed in quick mode (CI) finishes quickly: quick's epochs and steps."""
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=3), seed=1)
    handle = interrupt_after(t, 3)   # epoch 1, step 3 of 12
    t.fit()
    handle.remove()
    path = t.save(tmp_path / "mid.pt")
    monkeypatch.setenv(QUICK_ENV, "1")
    resumed = make(small)
    resumed.load(path)
    steps = {"n": 0}
    resumed.model.register_forward_hook(lambda m, i, o: steps.__setitem__("n", steps["n"] + m.training))
    resumed.fit()
    assert resumed.epoch == train.QUICK["epochs"] and not resumed.interrupted
    assert steps["n"] == train.QUICK["steps"] - 3    # the rest of its first epoch, in quick mode's steps


def test_evaluate_with_a_negative_limit_is_one_line(small):
    t = make(small)
    with pytest.raises(ValueError, match="limit must be a whole number of at least 1, got -5"):
        t.evaluate(limit=-5)
    assert 0 <= t.evaluate(limit=5)["test_acc"] <= 1


def test_nan_in_the_input_data_is_named_not_the_learning_rate():
    nan_data = data.FashionMNIST(batch_size=50, device="cpu", subset=20, test_subset=10)
    nan_data.train_images = nan_data.train_images.float()
    nan_data.train_images[7, 3, 3] = float("nan")
    t = train.Trainer(models.build("lenet"), data=nan_data, recipe=train.Recipe.modern("lenet", epochs=1))
    before = weights(t)
    with pytest.raises(train.TrainingDiverged) as err:
        t.fit()
    message = str(err.value)
    assert "the input images of 1 training batch hold NaN or infinite values" in message
    assert f"learning rate ({t.recipe.lr:g}) is not the cause" in message and "Try a lower learning rate" not in message
    assert torch.equal(weights(t), before)     # put back as they were


def test_notebook_bar_ends_on_the_last_epochs_figures(small, monkeypatch):
    """The live plot (and the bar's mid-epoch reading) may be due rarely on a slow CPU; the bar must
    still end on the last epoch's loss and accuracy, not on a reading from its start."""
    import IPython.display

    monkeypatch.setattr(train, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: None)
    monkeypatch.setattr(curves.LiveCurves, "due", lambda self: False)     # never due mid-epoch
    postfix = []
    close = progress.Progress.close
    monkeypatch.setattr(progress.Progress, "close", lambda self: postfix.append(self.bar.postfix) or close(self))
    t = make(small)
    t.fit()
    last = t.history[-1]
    assert f"acc={last['train_acc']:.3f}" in postfix[0] and f"test_acc={last['test_acc']:.3f}" in postfix[0]
    assert "epoch=2" in postfix[0]


def test_the_stop_request_alone():
    """The first SIGINT raises the flag; a second one during a step waits for the step's end; a
    further one outside a step raises at once; the previous handler comes back."""
    from d2lcnn.interrupt import StopRequest

    before, stop = signal.getsignal(signal.SIGINT), StopRequest()
    with stop.catching_interrupts():
        assert not stop.requested
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        finished = False
        with pytest.raises(KeyboardInterrupt):
            with stop.step():
                signal.raise_signal(signal.SIGINT)
                finished = True
        assert finished
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


# --- the optimizer --------------------------------------------------------------------------------

def test_the_optimizer_is_fused_and_updates_as_plain_sgd_does():
    """One kernel per update (a fifth of AlexNet's CPU step was PyTorch's per-tensor loop), the same
    update: weight decay on weights only, Nesterov momentum, momentum buffers from zero."""
    from d2lcnn.recipe import make_optimizer

    torch.manual_seed(0)
    recipe = train.Recipe.modern("lenet")
    nets = [models.build("lenet") for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = make_optimizer(nets[0], recipe)
    plain = torch.optim.SGD([{"params": [p for p in nets[1].parameters() if p.dim() > 1], "weight_decay": recipe.weight_decay},
                             {"params": [p for p in nets[1].parameters() if p.dim() <= 1], "weight_decay": 0.0}],
                            lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    assert all(g["fused"] for g in fused.param_groups) and not any(g["fused"] for g in plain.param_groups)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in nets[0].parameters()]
        for net, optimizer in zip(nets, (fused, plain)):
            for p, g in zip(net.parameters(), grads):
                p.grad = g.clone()
            optimizer.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b)


def test_a_torch_without_fused_sgd_for_the_device_gets_the_plain_one(monkeypatch):
    from d2lcnn.recipe import make_optimizer

    real = torch.optim.SGD

    def no_fused(params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", no_fused)
    optimizer = make_optimizer(models.build("lenet"), train.Recipe.modern("lenet"))
    assert isinstance(optimizer, real) and not any(g["fused"] for g in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [train.Recipe.modern("lenet").weight_decay, 0.0]
