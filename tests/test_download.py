"""Tests for zoo.download against a real local HTTP server; no test touches the internet."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import socket
import struct
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from zoo import download
from zoo.download import (
    DATASETS,
    MNIST_SHA256_UNCOMPRESSED,
    DownloadError,
    download_and_extract,
    download_file,
    safe_extract,
    sha256_of_gzip_payload,
    sha256sum,
)

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes: several chunks at the chunk sizes used below
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
CUT = 10_000  # bytes the flaky modes send before failing


class _State:
    """What the server serves and how it misbehaves, plus a log of what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/file.bin": PAYLOAD}
        self.mode = "normal"  # normal | ignore_range | cut_once | reset_once | stall_once | cut_always | 404
        self.cut_after = CUT
        self.stall_s = 1.0
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep pytest output clean
        pass

    def do_GET(self) -> None:
        st: _State = self.server.state
        range_header = self.headers.get("Range")
        with st.lock:
            st.requests.append((self.path, range_header))
            first_request = len(st.requests) == 1
        if st.mode == "404" or self.path not in st.files:
            self.send_error(404, "Not Found")
            return
        data = st.files[self.path]
        start = 0
        if range_header and st.mode != "ignore_range":
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

        flaky = st.mode == "cut_always" or (first_request and st.mode in ("cut_once", "reset_once", "stall_once"))
        if not flaky:
            self.wfile.write(body)
            return
        self.wfile.write(body[: st.cut_after])
        self.wfile.flush()
        self.close_connection = True
        if st.mode == "stall_once":
            time.sleep(st.stall_s)
        elif st.mode == "reset_once":
            # SO_LINGER with zero timeout turns close() into a TCP RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        # cut_once / cut_always: returning closes the socket cleanly, mid-body (a short read for the client).


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(download, "_RETRY_BACKOFF_S", 0.0)


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# ---------------------------------------------------------------- download_file


def test_good_download_matches_hash(server, tmp_path):
    base, st = server
    dest = tmp_path / "sub" / "file.bin"
    out = download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=True, chunk_size=4096)
    assert out == dest
    assert dest.read_bytes() == PAYLOAD
    assert sha256sum(dest) == PAYLOAD_SHA
    assert not _part(dest).exists()
    assert st.requests == [("/file.bin", None)]


def test_uppercase_hash_accepted_and_malformed_hash_rejected(server, tmp_path):
    base, _ = server
    download_file(f"{base}/file.bin", tmp_path / "a.bin", PAYLOAD_SHA.upper(), progress=False)
    with pytest.raises(ValueError, match="64 hex digits"):
        download_file(f"{base}/file.bin", tmp_path / "b.bin", "abc", progress=False)


def test_checksum_mismatch_deletes_everything(server, tmp_path):
    base, _ = server
    dest = tmp_path / "file.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as info:
        download_file(f"{base}/file.bin", dest, wrong, progress=False)
    message = str(info.value)
    assert f"{base}/file.bin" in message
    assert wrong in message and PAYLOAD_SHA in message
    assert sorted(os.listdir(tmp_path)) == []  # neither dest, nor .part, nor its source record


@pytest.mark.parametrize("mode", ["cut_once", "stall_once"])
def test_interrupted_transfer_resumes_from_bytes_on_disk(server, tmp_path, mode):
    base, st = server
    st.mode = mode
    st.stall_s = 1.0
    dest = tmp_path / "file.bin"
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False, chunk_size=4096, timeout=0.3)
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    # Exactly the CUT bytes that arrived were kept, and the retry asked only for the rest.
    assert st.requests == [("/file.bin", None), ("/file.bin", f"bytes={CUT}-")]


def test_connection_reset_is_retried(server, tmp_path):
    base, st = server
    st.mode = "reset_once"
    dest = tmp_path / "file.bin"
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False, chunk_size=4096)
    assert dest.read_bytes() == PAYLOAD
    assert len(st.requests) == 2
    # How much survives a RST depends on the kernel; whatever was kept, the retry resumed right after it.
    second_range = st.requests[1][1]
    if second_range is not None:
        assert 0 < int(re.fullmatch(r"bytes=(\d+)-", second_range).group(1)) <= CUT


def test_existing_part_is_resumed(server, tmp_path):
    base, st = server
    dest = tmp_path / "file.bin"
    _part(dest).write_bytes(PAYLOAD[:1234])
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests == [("/file.bin", "bytes=1234-")]


def test_complete_part_answered_416_is_verified_and_kept(server, tmp_path):
    base, st = server
    dest = tmp_path / "file.bin"
    _part(dest).write_bytes(PAYLOAD)
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests == [("/file.bin", f"bytes={len(PAYLOAD)}-")]


def test_oversized_part_answered_416_restarts_from_zero(server, tmp_path):
    base, st = server
    dest = tmp_path / "file.bin"
    _part(dest).write_bytes(b"x" * (len(PAYLOAD) + 10))
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests == [("/file.bin", f"bytes={len(PAYLOAD) + 10}-"), ("/file.bin", None)]


def test_part_from_another_mirror_is_not_resumed(server, tmp_path):
    base, st = server
    st.files["/mirror.bin"] = PAYLOAD
    st.mode = "cut_always"
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError):
        download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False, retries=0)
    assert _part(dest).stat().st_size == CUT
    st.mode = "normal"
    download_file(f"{base}/mirror.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests[-1] == ("/mirror.bin", None)
    assert sorted(os.listdir(tmp_path)) == ["file.bin"]  # no .part nor its source record left behind


def test_server_ignoring_range_still_gives_correct_file(server, tmp_path):
    base, st = server
    st.mode = "ignore_range"
    dest = tmp_path / "file.bin"
    _part(dest).write_bytes(b"garbage that must be truncated, not appended to")
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests == [("/file.bin", "bytes=47-")]


def test_retries_exhausted_keeps_part_and_a_rerun_resumes(server, tmp_path):
    base, st = server
    st.mode = "cut_always"
    st.cut_after = 1000
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="gave up after 2 retries") as info:
        download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False, retries=2)
    assert str(dest) in str(info.value)
    assert len(st.requests) == 3
    assert [r for _, r in st.requests] == [None, "bytes=1000-", "bytes=2000-"]
    assert _part(dest).read_bytes() == PAYLOAD[:3000]
    assert not dest.exists()

    st.mode = "normal"
    download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert st.requests[-1] == ("/file.bin", "bytes=3000-")


def test_404_raises_naming_url_without_retrying(server, tmp_path):
    base, st = server
    st.mode = "404"
    dest = tmp_path / "file.bin"
    url = f"{base}/file.bin"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, PAYLOAD_SHA, progress=False)
    message = str(info.value)
    assert url in message and "404" in message
    assert "place it at" in message and str(dest) in message
    assert len(st.requests) == 1
    assert sorted(os.listdir(tmp_path)) == []


def test_unreachable_host_raises_with_reason_and_hint(tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.bin"
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, None, progress=False, timeout=2.0)
    message = str(info.value)
    assert url in message and "ConnectionRefusedError" in message and str(dest) in message
    assert sorted(os.listdir(tmp_path)) == []


def test_existing_good_dest_makes_no_request(server, tmp_path):
    base, st = server
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    assert download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False) == dest
    assert st.requests == []


def test_existing_bad_dest_is_not_clobbered(server, tmp_path):
    base, st = server
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"not the payload")
    with pytest.raises(DownloadError, match="already exists"):
        download_file(f"{base}/file.bin", dest, PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == b"not the payload"
    assert st.requests == []


# ---------------------------------------------------------------- safe_extract


def _add(tf: tarfile.TarFile, name: str, kind: str = "file", payload: bytes | str = b"") -> None:
    info = tarfile.TarInfo(name)
    if kind == "file":
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
        return
    info.type = {
        "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE,
    }[kind]
    if kind == "dir":
        info.mode = 0o755
    if kind in ("sym", "hard"):
        info.linkname = payload
    tf.addfile(info)


def _snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def workspace(tmp_path):
    """`work/dest` (holding one pre-existing file) inside `tmp_path`, plus a spot for archives outside `work`."""
    work = tmp_path / "work"
    dest = work / "dest"
    dest.mkdir(parents=True)
    (dest / "existing.txt").write_text("keep me")
    return tmp_path, work, dest


HOSTILE = {  # case -> (members, words the refusal must contain)
    "dotdot": (lambda tmp: [("ok.txt", "file", b"fine"), ("../evil", "file", b"pwned")], "escapes"),
    "deep_dotdot": (lambda tmp: [("ok.txt", "file", b"fine"), ("a/b/../../../evil", "file", b"pwned")], "escapes"),
    "absolute": (lambda tmp: [("ok.txt", "file", b"fine"), (str(tmp / "work" / "evil"), "file", b"pwned")],
                 "absolute path"),
    "symlink_absolute": (lambda tmp: [("ok.txt", "file", b"fine"), ("evil", "sym", str(tmp / "outside"))],
                         "symlink to absolute"),
    "symlink_relative": (lambda tmp: [("ok.txt", "file", b"fine"), ("sub/evil", "sym", "../../outside")],
                         "symlink escaping"),
    # Lexically inside, but `a` is the root itself, so `a/..` is its parent.
    "symlink_chain": (lambda tmp: [("a", "sym", "."), ("evil", "sym", "a/..")], "symlink escaping"),
    "write_through_symlink": (lambda tmp: [("d", "sym", "sub/.."), ("d/../evil", "file", b"pwned")], "escapes"),
    "symlink_declared_late": (lambda tmp: [("x/../evil", "file", b"pwned"), ("x", "sym", ".")], "escapes"),
    "hardlink_outside": (lambda tmp: [("ok.txt", "file", b"fine"), ("evil", "hard", "../outside")],
                         "hard link escaping"),
    "device": (lambda tmp: [("ok.txt", "file", b"fine"), ("evil", "chr", "")], "device file"),
    "fifo": (lambda tmp: [("ok.txt", "file", b"fine"), ("evil", "fifo", "")], "FIFO"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused_and_nothing_is_written(workspace, case):
    tmp, work, dest = workspace
    members, reason = HOSTILE[case]
    archive = tmp / f"{case}.tar"
    with tarfile.open(archive, "w") as tf:
        for name, kind, payload in members(tmp):
            _add(tf, name, kind, payload)
    before = _snapshot(tmp)
    with pytest.raises(DownloadError, match="Refusing to extract") as info:
        safe_extract(archive, dest)
    assert reason in str(info.value)
    assert "Nothing was extracted" in str(info.value)
    # Neither the good member listed first nor the hostile one landed anywhere, and no temp dir is left over.
    assert _snapshot(tmp) == before
    assert sorted(os.listdir(work)) == ["dest"]


def test_hostile_zip_is_refused(workspace):
    tmp, work, dest = workspace
    archive = tmp / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr("../evil", "pwned")
    before = _snapshot(tmp)
    with pytest.raises(DownloadError, match="escapes"):
        safe_extract(archive, dest)
    assert _snapshot(tmp) == before


def test_zip_symlink_is_refused(workspace):
    tmp, _, dest = workspace
    archive = tmp / "link.zip"
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)  # S_IFLNK: zipfile would write it as a plain file, silently
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DownloadError, match="symlink"):
        safe_extract(archive, dest)
    assert _snapshot(dest) == ["existing.txt"]


def _good_tar(path: Path, mode: str) -> None:
    with tarfile.open(path, mode) as tf:
        _add(tf, "corpus", "dir")
        _add(tf, "corpus/wavs", "dir")
        _add(tf, "corpus/wavs/a.wav", "file", b"RIFF-a")
        _add(tf, "corpus/metadata.csv", "file", b"a|hello|hello\n")
        _add(tf, "corpus/latest", "sym", "wavs/a.wav")  # a symlink that stays inside is fine
        _add(tf, "corpus/copy.csv", "hard", "corpus/metadata.csv")


@pytest.mark.parametrize("mode,name", [("w:bz2", "good.tar.bz2"), ("w:gz", "good.tgz"), ("w", "good.tar"),
                                       ("w:gz", "misnamed.bin")])
def test_good_tar_extracts(workspace, mode, name):
    tmp, work, dest = workspace
    archive = tmp / name
    _good_tar(archive, mode)
    assert safe_extract(archive, dest) == dest
    assert (dest / "existing.txt").read_text() == "keep me"
    assert (dest / "corpus/wavs/a.wav").read_bytes() == b"RIFF-a"
    assert (dest / "corpus/metadata.csv").read_bytes() == b"a|hello|hello\n"
    assert (dest / "corpus/copy.csv").read_bytes() == b"a|hello|hello\n"
    assert (dest / "corpus/latest").is_symlink()
    assert (dest / "corpus/latest").read_bytes() == b"RIFF-a"
    assert sorted(os.listdir(work)) == ["dest"]  # the temporary sibling is gone


def test_extract_into_missing_dir_and_replace_stale_entry(tmp_path):
    archive = tmp_path / "good.tar.bz2"
    _good_tar(archive, "w:bz2")
    fresh = tmp_path / "fresh"
    safe_extract(archive, fresh)
    assert (fresh / "corpus/wavs/a.wav").read_bytes() == b"RIFF-a"
    assert fresh.stat().st_mode & 0o777 == 0o755
    # A half-populated leftover of the same top-level name is replaced by the archive's version.
    (fresh / "corpus/stale.txt").write_text("old")
    safe_extract(archive, fresh)
    assert not (fresh / "corpus/stale.txt").exists()
    assert (fresh / "corpus/metadata.csv").exists()


def test_good_zip_extracts(workspace):
    tmp, work, dest = workspace
    archive = tmp / "good.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("corpus/", "")
        zf.writestr("corpus/a.txt", "alpha")
        zf.writestr("corpus/nested/b.txt", "beta")
    safe_extract(archive, dest)
    assert (dest / "corpus/a.txt").read_text() == "alpha"
    assert (dest / "corpus/nested/b.txt").read_text() == "beta"
    assert (dest / "existing.txt").exists()
    assert sorted(os.listdir(work)) == ["dest"]


def test_not_an_archive_and_truncated_archive_are_refused(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not an archive" * 100)
    with pytest.raises(DownloadError, match="not a tar"):
        safe_extract(junk, tmp_path / "out")
    good = tmp_path / "good.tar.bz2"
    _good_tar(good, "w:bz2")
    truncated = tmp_path / "truncated.tar.bz2"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DownloadError):
        safe_extract(truncated, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert sorted(os.listdir(tmp_path)) == ["good.tar.bz2", "junk.tar", "truncated.tar.bz2"]


# ---------------------------------------------------------------- download_and_extract


def test_download_and_extract_writes_marker_and_is_idempotent(server, tmp_path):
    base, st = server
    archive = tmp_path / "corpus.tar.bz2"
    _good_tar(archive, "w:bz2")
    st.files["/data/corpus.tar.bz2"] = archive.read_bytes()
    root = tmp_path / "root"
    marker = ".corpus.extracted"

    out = download_and_extract(f"{base}/data/corpus.tar.bz2", root, sha256sum(archive), marker=marker,
                               progress=False)
    assert out == root
    assert (root / marker).is_file()
    assert (root / "corpus.tar.bz2").read_bytes() == archive.read_bytes()
    assert (root / "corpus/wavs/a.wav").read_bytes() == b"RIFF-a"
    assert len(st.requests) == 1

    # With the marker present nothing is fetched or re-extracted, even though a file has since been removed.
    (root / "corpus/metadata.csv").unlink()
    assert download_and_extract(f"{base}/data/corpus.tar.bz2", root, sha256sum(archive), marker=marker,
                                progress=False) == root
    assert len(st.requests) == 1
    assert not (root / "corpus/metadata.csv").exists()


def test_download_and_extract_failure_leaves_no_marker(server, tmp_path):
    base, st = server
    archive = tmp_path / "corpus.tar.bz2"
    _good_tar(archive, "w:bz2")
    st.files["/data/corpus.tar.bz2"] = archive.read_bytes()
    root = tmp_path / "root"
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        download_and_extract(f"{base}/data/corpus.tar.bz2", root, "f" * 64, marker=".done", progress=False)
    assert not (root / ".done").exists()
    assert not (root / "corpus").exists()
    with pytest.raises(ValueError, match="marker"):
        download_and_extract(f"{base}/data/corpus.tar.bz2", root, None, marker="../.done", progress=False)


# ---------------------------------------------------------------- checksum tables


def test_gzip_payload_hash_ignores_gzip_header(tmp_path):
    data = b"idx payload" * 1000
    a, b = tmp_path / "a.gz", tmp_path / "b.gz"
    a.write_bytes(gzip.compress(data, mtime=0))
    b.write_bytes(gzip.compress(data, compresslevel=1, mtime=123456))
    assert a.read_bytes() != b.read_bytes()
    assert sha256_of_gzip_payload(a) == sha256_of_gzip_payload(b) == hashlib.sha256(data).hexdigest()


MNIST_DIR = Path("/work/shared/data/mnist")


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="local MNIST copy not present")
def test_local_mnist_matches_pinned_payload_hashes():
    for name, expected in MNIST_SHA256_UNCOMPRESSED.items():
        assert sha256_of_gzip_payload(MNIST_DIR / f"{name}.gz") == expected, name


def test_dataset_table_is_well_formed():
    assert set(DATASETS) == {"LJSpeech-1.1", "CMU_ARCTIC", "MNIST"}
    for entries in DATASETS.values():
        for url, sha, filename in entries:
            assert url.rsplit("/", 1)[1] == filename
            assert sha is None or re.fullmatch(r"[0-9a-f]{64}", sha)
    speakers = [re.search(r"cmu_us_(\w+)_arctic", e.url).group(1) for e in DATASETS["CMU_ARCTIC"]]
    assert speakers == "aew ahw aup awb axb bdl clb eey fem gka jmk ksp ljm lnh rms rxr slp slt".split()
    assert all(e.sha256 for e in DATASETS["CMU_ARCTIC"] + DATASETS["LJSpeech-1.1"])
    mnist_files = {e.filename.removesuffix(".gz") for e in DATASETS["MNIST"]}
    assert mnist_files == set(MNIST_SHA256_UNCOMPRESSED)
