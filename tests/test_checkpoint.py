"""d2lcnn.checkpoint through the Trainer: strict, all or nothing, no stray files, the user's file mode."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from d2lcnn import checkpoint, data, models, train


@pytest.fixture(scope="module")
def small():
    return data.FashionMNIST(batch_size=50, device="cpu", subset=20, test_subset=10)


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), seed=3)
    t.fit()
    return t, t.save(tmp_path_factory.mktemp("ckpt") / "lenet.pt")


def snapshot(t):
    return ([p.detach().clone() for p in t.model.parameters()], list(t.history), t.recipe, t.epoch, t.data)


def unchanged(t, before):
    params, history, recipe, epoch, data_ = before
    assert all(torch.equal(a, b) for a, b in zip(params, t.model.parameters()))
    assert (t.history, t.recipe, t.epoch) == (history, recipe, epoch) and t.data is data_


def fresh(small):
    return train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"), seed=9)


def rewrite(path, out, **changes):
    state = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    state["checksum"] = checkpoint.checksum(state)   # as a careful forger would: the checks below must hold
    torch.save(state, out)
    return out


@pytest.mark.parametrize("change, words", [
    ({"history": None}, "no 'history'"),
    ({"epoch": "two"}, "'epoch' is a str, not a int"),
    ({"format": "d2lcnn-checkpoint-1"}, "format 'd2lcnn-checkpoint-1'; this version of d2lcnn reads 'd2lcnn-checkpoint-2'"),
])
def test_damaged_or_old_checkpoints_change_nothing(saved, small, tmp_path, change, words):
    _, path = saved
    bad = rewrite(path, tmp_path / "bad.pt", **change)
    t = fresh(small)
    before = snapshot(t)
    with pytest.raises(checkpoint.CheckpointError) as err:
        t.load(bad)
    assert words in str(err.value)
    unchanged(t, before)


def test_unknown_recipe_field_changes_nothing(saved, small, tmp_path):
    _, path = saved
    state = torch.load(path, weights_only=True)
    bad = rewrite(path, tmp_path / "bad.pt", recipe={**state["recipe"], "dropout": 0.5})
    t = fresh(small)
    before = snapshot(t)
    with pytest.raises(checkpoint.CheckpointError, match="its recipe does not match.*unknown dropout.*Nothing was loaded"):
        t.load(bad)
    unchanged(t, before)
    invalid = rewrite(path, tmp_path / "invalid.pt", recipe={**state["recipe"], "lr": -1.0})
    with pytest.raises(checkpoint.CheckpointError, match="its recipe is invalid.*lr must be"):
        t.load(invalid)
    unchanged(t, before)


def test_not_a_checkpoint(small, tmp_path):
    plain = tmp_path / "weights.pt"
    torch.save(models.build("lenet").state_dict(), plain)
    with pytest.raises(checkpoint.CheckpointError, match="no 'd2lcnn-checkpoint-3' marker.*plain state_dict"):
        fresh(small).load(plain)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable d2lcnn checkpoint"):
        fresh(small).load(junk)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fresh(small).load(tmp_path / "missing.pt")


def test_data_follows_the_checkpoint_or_the_mismatch_is_named(small, tmp_path):
    recipe = train.Recipe.modern("lenet", epochs=1, normalize=True)
    t = train.Trainer(models.build("lenet"), data=data.FashionMNIST(batch_size=50, device="cpu", subset=20,
                                                                    test_subset=10, normalize=True), recipe=recipe)
    t.fit()
    path = t.save(tmp_path / "normalized.pt")
    # A Trainer given data prepared otherwise refuses, naming both sides, and changes nothing.
    other = fresh(small)
    before = snapshot(other)
    with pytest.raises(checkpoint.CheckpointError, match="normalize=True in the checkpoint, False in this Trainer's data"):
        other.load(path)
    unchanged(other, before)
    # A Trainer that made its own data makes the checkpoint's instead.
    own = train.Trainer(models.build("lenet"), recipe=train.Recipe.book("lenet"), device="cpu")
    assert not own.data.normalize
    own.load(path)
    assert own.data.normalize and own.data.batch_size == 50 and own.recipe.normalize
    # And from_checkpoint builds the same network, recipe and data from the file alone.
    again = train.Trainer.from_checkpoint(path, device="cpu")
    assert again.name == "lenet/fashion" and again.recipe == t.recipe and again.data.normalize
    assert all(torch.equal(a, b.cpu()) for a, b in zip(again.model.parameters(), t.model.parameters()))


def test_file_mode_is_the_users(saved, small, tmp_path):
    t, _ = saved
    old = os.umask(0o022)
    try:
        path = t.save(tmp_path / "mode.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_killed_saves_leave_no_temporaries(saved, tmp_path):
    """A save killed mid-write leaves its temporary file; the next save removes it."""
    _, path = saved
    target = tmp_path / "model.pt"
    script = ("import os, torch, d2lcnn.checkpoint as c\n"
              f"state = torch.load({str(path)!r}, weights_only=True)\n"
              "def slow(obj, f): f.write(b'partial'); f.flush(); os.kill(os.getpid(), 9)\n"
              "torch.save = slow\n"
              f"c.save(state, {str(target)!r})\n")
    for _ in range(3):
        subprocess.run([sys.executable, "-c", script])
    leftovers = list(tmp_path.glob(".model.pt.*.tmp"))
    assert len(leftovers) == 1 and not target.exists()  # each save removed the one killed before it
    t, _ = saved
    t.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    assert train.Trainer.from_checkpoint(target, device="cpu").epoch == 1


# ----------------------------------------------------------------------------------------------
# Issue 26: variant networks, checksums, impossible values, all refused before anything changes
# ----------------------------------------------------------------------------------------------

def test_a_variant_network_of_the_same_name_is_refused_naming_both_sides(small, tmp_path):
    from torch import nn

    relu = train.Trainer(models.build("lenet", activation=nn.ReLU, pool=nn.MaxPool2d), data=small,
                         recipe=train.Recipe.modern("lenet", epochs=1))
    path = relu.save(tmp_path / "relu.pt")
    t = fresh(small)
    before = snapshot(t)
    with pytest.raises(checkpoint.CheckpointError) as err:
        t.load(path)
    message = str(err.value)
    assert "built differently" in message and "ReLU() in the file, Sigmoid() in the model" in message
    assert "MaxPool2d" in message and "Nothing was loaded" in message
    unchanged(t, before)
    with pytest.raises(checkpoint.CheckpointError, match="ReLU\\(\\) in the file, Sigmoid\\(\\) in the model"):
        train.Trainer.from_checkpoint(path, device="cpu")
    # Built as it was trained, it loads.
    same = train.Trainer(models.build("lenet", activation=nn.ReLU, pool=nn.MaxPool2d), data=small)
    same.load(path)
    assert all(torch.equal(a, b) for a, b in zip(same.model.parameters(), relu.model.parameters()))


def test_a_network_built_with_arguments_comes_back_built_the_same(small, tmp_path):
    # Lesson 03 builds AlexNet with adaptive_pool=True; a narrower MobileNet stands for it here.
    half = train.Trainer(models.build("mobilenet_v1", width=0.5), data=small,
                         recipe=train.Recipe.modern("mobilenet_v1", epochs=1))
    path = half.save(tmp_path / "half.pt")
    assert torch.load(path, weights_only=True)["build"] == {"width": 0.5}
    again = train.Trainer.from_checkpoint(path, device="cpu")
    assert checkpoint.structure(again.model) == checkpoint.structure(half.model)
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), half.model.parameters()))
    # Arguments the builder does not take are refused, saying which.
    bad = rewrite(path, tmp_path / "bad.pt", build={"wide": 2})
    with pytest.raises(checkpoint.CheckpointError, match="cannot be built with its recorded arguments.*'wide'"):
        train.Trainer.from_checkpoint(bad, device="cpu")


def test_arguments_that_are_not_plain_values_are_not_recorded(small, tmp_path):
    from torch import nn

    relu = train.Trainer(models.build("lenet", activation=nn.ReLU), data=small,
                         recipe=train.Recipe.modern("lenet", epochs=1))
    assert "build" not in torch.load(relu.save(tmp_path / "relu.pt"), weights_only=True)


def flip_a_weight_byte(path, weight):
    """Change one byte inside ``weight``'s data in the file (torch does not check its archive's CRC)."""
    blob = bytearray(path.read_bytes())
    raw = weight.detach().cpu().numpy().tobytes()
    at = blob.find(raw[:64])
    assert at > 0
    blob[at + 41] ^= 0x40
    path.write_bytes(bytes(blob))


def test_a_flipped_byte_is_refused(saved, small, tmp_path):
    t, path = saved
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    flip_a_weight_byte(copy, t.model.state_dict()["0.weight"])
    assert not torch.equal(torch.load(copy, weights_only=True)["model"]["0.weight"], t.model.state_dict()["0.weight"])
    other = fresh(small)
    before = snapshot(other)
    with pytest.raises(checkpoint.CheckpointError, match="is damaged: its contents do not match the checksum.*Nothing was loaded"):
        other.load(copy)
    unchanged(other, before)
    with pytest.raises(checkpoint.CheckpointError, match="checksum"):
        train.Trainer.from_checkpoint(copy, device="cpu")


def nan_weights(state):
    return {**state["model"], "0.weight": torch.full_like(state["model"]["0.weight"], float("nan"))}


def listed_weight(state):
    return {**state["model"], "0.weight": state["model"]["0.weight"].tolist()}


@pytest.mark.parametrize("change, words", [
    (lambda s: {"epoch": -5}, "epoch -5, below 0"),
    (lambda s: {"model": nan_weights(s)}, "weight '0.weight' has 150 NaN/infinite values of 150"),
    (lambda s: {"model": listed_weight(s)}, "weight '0.weight' is a list, not a tensor"),
    (lambda s: {"history": ["garbage", 3]}, "history[0] is a str, not a record"),
    (lambda s: {"history": [{"epoch": 99, "test_acc": "high"}]}, "history[0] has epoch 99"),
    (lambda s: {"plan": {"foo": 1}}, "the plan lacks start, end, steps, step, done, partial, warned (it has foo)"),
    (lambda s: {"plan": {**s["plan"], "done": False, "step": 10**6}}, "plan step 1000000 is not in epoch 2"),
    (lambda s: {"optimizer": {"foo": 1}}, "'optimizer' lacks its 'state' dict"),
    (lambda s: {"epoch": True}, "'epoch' is a bool, not a int"),
])
def test_impossible_values_are_refused_and_change_nothing(saved, small, tmp_path, change, words):
    _, path = saved
    state = torch.load(path, weights_only=True)
    bad = rewrite(path, tmp_path / "bad.pt", **change(state))
    t = fresh(small)
    before = snapshot(t)
    with pytest.raises(checkpoint.CheckpointError) as err:
        t.load(bad)
    assert words in str(err.value) and "Nothing was loaded" in str(err.value)
    unchanged(t, before)
    with pytest.raises(checkpoint.CheckpointError):
        train.Trainer.from_checkpoint(bad, device="cpu")


def test_a_version_2_checkpoint_still_loads(saved, small, tmp_path):
    t, path = saved
    state = torch.load(path, weights_only=True)
    del state["structure"], state["checksum"]
    state["format"] = "d2lcnn-checkpoint-2"
    old = tmp_path / "old.pt"
    torch.save(state, old)
    loaded = fresh(small).load(old)
    assert loaded.epoch == 1 and all(torch.equal(a, b) for a, b in zip(loaded.model.parameters(), t.model.parameters()))
