"""d2lcnn.data: finding, checking and serving Fashion-MNIST."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from d2lcnn import data
from d2lcnn.runtime import default_device

from .conftest import write_idx


def test_real_data_passes_every_check(arrays):
    assert arrays.train_images.shape == (60_000, 28, 28) and arrays.train_images.dtype == torch.uint8
    assert arrays.test_images.shape == (10_000, 28, 28)
    # Fashion-MNIST is balanced: 6,000 / 1,000 per class.
    assert torch.bincount(arrays.train_labels.long()).tolist() == [6000] * 10
    assert torch.bincount(arrays.test_labels.long()).tolist() == [1000] * 10
    mean = arrays.train_images.float().mean().item() / 255
    assert abs(mean - data.MEAN) < 1e-3


def test_search_order(monkeypatch, tmp_path, fake_dataset, nowhere):
    monkeypatch.setenv(data.ENV_VAR, str(fake_dataset))
    places = data.search_path(tmp_path / "given")
    assert [why for why, _ in places][:2] == ["the path given", f"${data.ENV_VAR}"]
    assert places[-1][1] == data.DEBIAN_DIR
    # The explicit path wins over the environment variable when it holds the files.
    assert data.load_arrays(fake_dataset, download=False).found_by == "the path given"
    assert data.load_arrays(download=False).found_by == f"${data.ENV_VAR}"


def test_a_folder_given_that_lacks_files_is_named_not_replaced(fake_dataset, arrays, monkeypatch):
    """root= lacking a file: an error naming it and the folder, although a complete copy exists."""
    (fake_dataset / "t10k-labels-idx1-ubyte").unlink()
    words = ["Fashion-MNIST was not found in", f"{fake_dataset} (the path given)", "lacks 1 of the 4 files",
             "missing t10k-labels-idx1-ubyte[.gz].", "correct root=", "A complete copy is in", "leave root= out"]
    for load in (lambda: data.load_arrays(fake_dataset, download=False),
                 lambda: data.FashionMNIST(root=fake_dataset, download=False, device="cpu")):
        with pytest.raises(data.DataError) as err:
            load()
        assert all(word in str(err.value) for word in words), str(err.value)
        assert "train-images" not in str(err.value).split("\n")[0], "only the missing file is named"

    def offline(folder):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data, "_download", offline)      # download allowed, but it fails: still no fallback
    with pytest.raises(data.DataError, match=r"missing t10k-labels.*; downloading it into .* failed .*unreachable"):
        data.load_arrays(fake_dataset, download=True)


def test_an_environment_folder_that_lacks_files_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(data.DataError) as err:
        data.load_arrays(download=False)
    for word in (f"{tmp_path / 'typo'} ($D2LCNN_DATA)", "does not exist", "train-images-idx3-ubyte[.gz]",
                 "t10k-labels-idx1-ubyte[.gz]", "correct $D2LCNN_DATA", "unset D2LCNN_DATA"):
        assert word in str(err.value), str(err.value)


def test_the_default_places_still_fall_back(fake_dataset, tmp_path, monkeypatch, nowhere):
    (nowhere / "train-images-idx3-ubyte").write_bytes(b"")       # data/ holds one file of four
    monkeypatch.setattr(data, "DEBIAN_DIR", fake_dataset)
    assert data.load_arrays(download=False).found_by == "the Debian package dataset-fashion-mnist"


def test_the_repr_says_where_the_data_came_from(fake_dataset, nowhere):
    ds = data.FashionMNIST(root=fake_dataset, device="cpu", subset=1, test_subset=1)
    assert f"source={fake_dataset.resolve()} (the path given))" in repr(ds)
    assert (ds.source, ds.found_by) == (fake_dataset.resolve(), "the path given")


def test_an_unwritable_torchvision_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """Tests run as root, where a read-only mode stops nothing: data/ sits under a regular FILE,
    so creating anything in it fails (NotADirectoryError), as a read-only data/ would."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(data, "default_data_dir", lambda: blocker / "data")
    with pytest.raises(data.DataError) as err:
        data.torchvision_root()
    message = str(err.value)
    assert "\n" not in message and f"into {blocker / 'data' / 'torchvision' / 'FashionMNIST' / 'raw'}" in message
    assert "Not a directory" in message and "--cache DIR" in message
    from d2lcnn.commands import main
    argv = ["data", "--bench", "--resize", "28", "--device", "cpu", "--batches", "1", "--workers", "0"]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and out.err.startswith("error: cannot unpack Fashion-MNIST")
    assert main([*argv, "--cache", str(tmp_path / "tv"), "--json"]) == 0, "the way out it names works"
    assert json.loads(capsys.readouterr().out)["torchvision_per_s"] > 0
    assert (tmp_path / "tv" / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()


def test_torchvision_layout_and_gzip_are_found(tmp_path, arrays, nowhere):
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    for split, (images, labels, _) in data.SPLITS.items():
        write_idx(raw / images, getattr(arrays, f"{split}_images"), labels=False, gz=True)
        write_idx(raw / labels, getattr(arrays, f"{split}_labels"), labels=True, gz=False)
    found = data.load_arrays(tmp_path / "tv", download=False)
    assert torch.equal(found.test_labels, arrays.test_labels)


def test_offline_without_data_lists_every_place(nowhere):
    with pytest.raises(data.DataError) as err:
        data.load_arrays(download=False)
    message = str(err.value)
    assert "not found" in message
    assert str(nowhere) in message and str(data.DEBIAN_DIR) in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_failed_download_says_why_and_where(nowhere, monkeypatch):
    def offline(folder):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(data.DataError, match="downloading it into .* failed .*Network is unreachable"):
        data.load_arrays(download=True)


@pytest.mark.parametrize("damage, expected", [
    (dict(truncate=100), "truncated"),
    (dict(magic=2049), "magic number"),
    (dict(count=59_999), "expected 60,000"),
])
def test_damaged_image_file_is_named(fake_dataset, arrays, nowhere, damage, expected):
    bad = write_idx(fake_dataset / "train-images-idx3-ubyte", arrays.train_images, labels=False,
                    gz=False, **damage)
    with pytest.raises(data.DataError, match=expected) as err:
        data.load_arrays(fake_dataset, download=False)
    assert str(bad) in str(err.value)


def test_labels_out_of_range(fake_dataset, arrays, nowhere):
    labels = arrays.test_labels.clone()
    labels[123] = 10
    write_idx(fake_dataset / "t10k-labels-idx1-ubyte", labels, labels=True, gz=False)
    with pytest.raises(data.DataError, match="label 10 out of range"):
        data.load_arrays(fake_dataset, download=False)


def test_truncated_gzip_is_named(fake_dataset, nowhere):
    path = fake_dataset / "t10k-labels-idx1-ubyte"
    packed = gzip.compress(path.read_bytes())
    path.unlink()
    (fake_dataset / "t10k-labels-idx1-ubyte.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: cannot be read"):
        data.load_arrays(fake_dataset, download=False)


@pytest.mark.parametrize("resize", [28, 32, 64, 96, 224])
def test_resize_matches_torchvision(arrays, resize):
    """Our on-device bilinear resize agrees with the book's PIL Resize + ToTensor.

    PIL rounds to uint8 after resizing, we stay in float: they may differ by half a grey level.
    """
    ds = data.FashionMNIST(batch_size=16, resize=resize, device="cpu", test_subset=2)
    x, y = next(iter(ds.test_batches()))
    assert x.shape == (16, 1, resize, resize) and x.dtype == torch.float32 and y.dtype == torch.int64
    for i in range(4):
        img = Image.fromarray(ds.test_images[i].numpy())
        ref = TF.to_tensor(TF.resize(img, resize))
        assert (x[i] - ref).abs().max().item() <= 1 / 255 + 1e-6


def test_shuffle_is_reproducible_from_seed():
    a = data.FashionMNIST(batch_size=64, device="cpu", seed=3, augment=True)
    b = data.FashionMNIST(batch_size=64, device="cpu", seed=3, augment=True)
    c = data.FashionMNIST(batch_size=64, device="cpu", seed=4, augment=True)
    xa, ya = next(iter(a.train_batches(epoch=2)))
    xb, yb = next(iter(b.train_batches(epoch=2)))
    xc, yc = next(iter(c.train_batches(epoch=2)))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(ya, yc)
    # Another epoch gives another order.
    _, y2 = next(iter(a.train_batches(epoch=3)))
    assert not torch.equal(ya, y2)


def test_resume_mid_epoch_gives_the_remaining_batches():
    ds = data.FashionMNIST(batch_size=500, device="cpu", subset=200)
    full = [y for _, y in ds.train_batches(epoch=1)]
    rest = ds.train_batches(epoch=1, start=2)
    assert len(rest) == len(full) - 2
    assert all(torch.equal(a, b) for a, b in zip(full[2:], (y for _, y in rest)))


def test_shards_split_one_permutation():
    ds = data.FashionMNIST(batch_size=100, device="cpu", subset=50)
    whole = torch.cat([y for _, y in ds.train_batches(epoch=0)])
    shards = [list(ds.train_batches(epoch=0, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1])
    assert all(len(y) == 50 for shard in shards for _, y in shard)
    together = torch.cat([torch.cat([y for _, y in shard]) for shard in shards])
    assert torch.equal(together.sort().values, whole.sort().values)


def test_balanced_subset():
    ds = data.FashionMNIST(device="cpu", subset=30, test_subset=7)
    assert torch.bincount(ds.train_labels).tolist() == [30] * 10
    assert torch.bincount(ds.test_labels).tolist() == [7] * 10
    # "first N per class": the first training image of class 9 is the first one in the file.
    first9 = int(torch.nonzero(data.load_arrays().train_labels == 9)[0])
    assert torch.equal(ds.train_images[ds.train_labels == 9][0], data.load_arrays().train_images[first9])


def test_augmentation_is_a_crop_and_flip_of_the_original():
    plain = data.FashionMNIST(batch_size=32, device="cpu", subset=10, seed=1)
    aug = data.FashionMNIST(batch_size=32, device="cpu", subset=10, seed=1, augment=True, crop_padding=2)
    (xp, yp), (xa, ya) = next(iter(plain.train_batches())), next(iter(aug.train_batches()))
    assert torch.equal(yp, ya) and xa.shape == xp.shape
    assert not torch.equal(xa, xp)
    # Every augmented image is its original shifted by at most 2 pixels, maybe mirrored.
    pad = torch.nn.functional.pad(xp[:, 0], (2, 2, 2, 2))
    for i in range(len(xa)):
        candidates = [pad[i, dy:dy + 28, dx:dx + 28] for dy in range(5) for dx in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(xa[i, 0], c) for c in candidates)


def test_normalize_uses_training_statistics():
    ds = data.FashionMNIST(batch_size=10_000, device="cpu", normalize=True)
    x, _ = next(iter(ds.test_batches()))
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05


def test_data_lives_on_the_device():
    ds = data.FashionMNIST(device="cpu", subset=5)
    assert ds.train_images.device == default_device("cpu") and ds.train_images.dtype == torch.uint8


def test_show_images_titles_mistakes_in_red():
    import matplotlib
    matplotlib.use("Agg")
    ds = data.FashionMNIST(device="cpu", test_subset=1)
    x, y = ds.sample(10, per_class=True)
    preds = y.clone()
    preds[0] = 1
    fig = data.show_images(x, y, preds, ncols=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "t-shirt -> trouser" and titles[1] == "trouser"
    assert fig.axes[0].title.get_color() == "red"


def test_cli_check_json():
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "data", "--check", "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["ok"] and report["train"] == 60_000 and report["test"] == 10_000


def test_cli_check_fails_clearly_without_data(tmp_path):
    env = {"D2LCNN_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = ("import d2lcnn.data as d, pathlib, sys;"
            f"d.DEBIAN_DIR = pathlib.Path({str(tmp_path / 'x')!r});"
            f"d.default_data_dir = lambda: pathlib.Path({str(tmp_path / 'y')!r});"
            "from d2lcnn.commands import main; sys.exit(main(['data', '--check']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert "Fashion-MNIST was not found" in out.stderr and "apt-get install" in out.stderr


def test_cli_bench_json_small():
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "data", "--bench", "--resize", "32",
                          "--device", "cpu", "--batches", "3", "--workers", "0", "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert {"ours_per_s", "torchvision_per_s", "ratio"} <= report.keys()
    assert report["ours_per_s"] > 0 and report["torchvision_per_s"] > 0


# ----------------------------------------------------------------------------------------------
# Issue 26: a typo in $D2LCNN_DATA creates nothing; files that are not the release's are named
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("download", [True, False])
def test_an_environment_folder_that_does_not_exist_is_said_and_nothing_created(tmp_path, monkeypatch, download):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    typo = tmp_path / "fashoin" / "mnist"
    monkeypatch.setenv(data.ENV_VAR, str(typo))
    with pytest.raises(data.DataError) as err:
        data.FashionMNIST(device="cpu", download=download)
    message = str(err.value)
    assert f"{typo} ($D2LCNN_DATA)" in message and "does not exist (nothing was created" in message
    assert "lacks" not in message and "correct $D2LCNN_DATA" in message
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_the_official_release_is_named(fake_dataset, arrays, nowhere):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")       # the official files: no warning
        data.load_arrays(fake_dataset, download=False)
    data._read_folder.cache_clear()
    shifted = torch.roll(arrays.train_labels, 1)          # every label moved by one place
    bad = write_idx(fake_dataset / "train-labels-idx1-ubyte", shifted, labels=True, gz=False)
    with pytest.warns(data.DataWarning) as caught:
        loaded = data.load_arrays(fake_dataset, download=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(bad) in message and "not the official Fashion-MNIST file" in message and "labels shifted" in message
    assert torch.equal(loaded.train_labels, shifted)      # loaded as it is: nothing changed, only said
    report = data.check(fake_dataset)
    assert report["official"] == {**{name: True for name in data.FILES}, "train-labels-idx1-ubyte": False}


@pytest.mark.parametrize("args, words", [
    (["--batches", "0"], "--batches must be a whole number of at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be a whole number of at least 1, got 0"),
    (["--resize", "-1"], "--resize must be a whole number of at least 1, got -1"),
    (["--workers", "-2"], "--workers must be 0 or more"),
])
def test_data_bench_bad_numbers_are_one_line(args, words, monkeypatch, capsys):
    from d2lcnn.commands import data as command
    from d2lcnn.commands import main

    monkeypatch.setattr(command, "bench", lambda *a, **k: pytest.fail("it measured"))
    assert main(["data", "--bench", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
