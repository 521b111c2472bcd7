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
    with pytest.raises(checkpoint.CheckpointError, match="no 'd2lcnn-checkpoint-2' marker.*plain state_dict"):
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
