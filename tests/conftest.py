"""Shared fixtures: the real Fashion-MNIST (offline, from the Debian package in CI) and helpers
to make small, broken IDX files for the bad-input tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from d2lcnn import data


@pytest.fixture(scope="session")
def arrays():
    """The real dataset, read and checked once per test session."""
    return data.load_arrays(download=False)


def write_idx(path: Path, values: torch.Tensor, labels: bool, magic: int | None = None,
              count: int | None = None, truncate: int = 0, gz: bool = True) -> Path:
    """Write an IDX file (gzipped by default), optionally with a wrong magic, count or length."""
    magic = magic if magic is not None else (data.LABEL_MAGIC if labels else data.IMAGE_MAGIC)
    count = count if count is not None else values.shape[0]
    header = struct.pack(">II", magic, count)
    if not labels:
        header += struct.pack(">II", *values.shape[1:])
    raw = header + values.to(torch.uint8).numpy().tobytes()
    if truncate:
        raw = raw[:-truncate]
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


@pytest.fixture
def fake_dataset(tmp_path, arrays):
    """A folder with a copy of the real files (as raw IDX), to break one at a time."""
    folder = tmp_path / "fm"
    for split, (images, labels, _) in data.SPLITS.items():
        write_idx(folder / images, getattr(arrays, f"{split}_images"), labels=False, gz=False)
        write_idx(folder / labels, getattr(arrays, f"{split}_labels"), labels=True, gz=False)
    return folder


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No data anywhere: every default place points at an empty folder."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "default_data_dir", lambda: empty)
    data._read_folder.cache_clear()
    yield empty
    data._read_folder.cache_clear()
