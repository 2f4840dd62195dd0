"""Fixtures of the data tests."""
from __future__ import annotations

import socket

import pytest

from ._helpers import OfflineNetwork


@pytest.fixture
def offline(monkeypatch):
    import torchvision.datasets

    network = OfflineNetwork()
    monkeypatch.setattr(socket, "create_connection", network.create_connection)

    def download(dataset):
        network.downloads.append(type(dataset).__name__)
        raise RuntimeError("download attempted while offline")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", download)
    yield network
    network.release.set()  # let probes that were left hanging end
