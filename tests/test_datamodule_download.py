"""The DataModules' real download path, end to end, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import zoo.download as download
from datamodules import LJSpeechDataModule, MNISTDataModule
from tests.conftest import make_ljspeech_tree, make_mnist_tree
from zoo.audio import AudioConfig
from zoo.errors import DatasetNotFoundError


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (a random free port), and its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_ljspeech_downloads_verifies_and_extracts(served, tmp_path, monkeypatch):
    folder, url = served
    make_ljspeech_tree(tmp_path / "src", n=12)
    archive = folder / "LJSpeech-1.1.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(tmp_path / "src" / "LJSpeech-1.1", arcname="LJSpeech-1.1")
    sha = download.sha256sum(archive)
    monkeypatch.setitem(download.DATASETS, "LJSpeech-1.1", [download.Resource(url + archive.name, sha, archive.name)])
    root = tmp_path / "data"
    dm = LJSpeechDataModule(root=str(root), download=True, audio=AudioConfig(n_mels=20), batch_size=4, progress=False)
    dm.prepare_data()
    dm.setup()
    assert (root / "LJSpeech-1.1" / "metadata.csv").is_file()
    assert sum(len(d) for d in dm.datasets.values()) == 12
    # a corrupted download is refused with the checksum named, and nothing is left behind
    bad_root = tmp_path / "bad"
    monkeypatch.setitem(download.DATASETS, "LJSpeech-1.1", [download.Resource(url + archive.name, "0" * 64, archive.name)])
    with pytest.raises(DatasetNotFoundError, match=r"(?s)(SHA-256|sha256).*--data.source embedded"):
        LJSpeechDataModule(root=str(bad_root), download=True, progress=False).prepare_data()
    assert not (bad_root / "LJSpeech-1.1").exists()
    assert not list(bad_root.glob("*.tar.bz2*"))


def test_mnist_downloads_from_the_first_working_mirror(served, tmp_path, monkeypatch):
    folder, url = served
    src = make_mnist_tree(tmp_path / "src", n_train=30, n_test=10)
    for gz in src.glob("*.gz"):
        (folder / gz.name).write_bytes(gz.read_bytes())
    resources = [r for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
                 for r in (download.Resource(url + "missing/" + name, None, name), download.Resource(url + name, None, name))]
    monkeypatch.setitem(download.DATASETS, "MNIST", resources)  # the first mirror answers 404
    monkeypatch.setattr(download, "MNIST_SHA256_UNCOMPRESSED",
                        {gz.name.removesuffix(".gz"): download.sha256_of_gzip_payload(gz) for gz in src.glob("*.gz")})
    import datamodules.mnist as mnist_module

    monkeypatch.setattr(mnist_module, "MNIST_SHA256_UNCOMPRESSED", download.MNIST_SHA256_UNCOMPRESSED)
    dm = MNISTDataModule(root=str(tmp_path / "data"), download=True, val_size=5)
    dm.prepare_data()
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 25, "val": 5, "test": 10}
