"""Tiny real datasets for training tests: rendered by vita, written as HDF5."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.helpers import make_dataset


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "tier1.h5", tier=1, n=64)


@pytest.fixture(scope="session")
def tiny_dataset_t3(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data3") / "tier3.h5", tier=3, n=40)
