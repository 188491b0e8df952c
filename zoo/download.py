"""Resumable, checksum-verified dataset downloads and path-safe archive extraction."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import NamedTuple

from tqdm import tqdm

from zoo.errors import ZooError

__all__ = [
    "DATASETS",
    "CMU_ARCTIC_SPEAKERS",
    "MNIST_SHA256_UNCOMPRESSED",
    "DownloadError",
    "Resource",
    "download_and_extract",
    "download_file",
    "safe_extract",
    "sha256_of_gzip_payload",
    "sha256sum",
]


class Resource(NamedTuple):
    """One downloadable file: where it lives, its SHA-256 (None if unpublished) and its local name."""

    url: str
    sha256: str | None
    filename: str


# LJSpeech-1.1: SHA-256 from pytorch/audio src/torchaudio/datasets/ljspeech.py (_RELEASE_CONFIGS["release1"]).
_LJSPEECH_URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
_LJSPEECH_SHA256 = "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"

# CMU ARCTIC: SHA-256 per speaker tarball from pytorch/audio src/torchaudio/datasets/cmuarctic.py (_CHECKSUMS),
# keyed there by exactly these http://festvox.org/cmu_arctic/packed/ URLs.
_CMU_ARCTIC_SHA256 = {
    "aew": "645cb33c0f0b2ce41384fdd8d3db2c3f5fc15c1e688baeb74d2e08cab18ab406",
    "ahw": "024664adeb892809d646a3efd043625b46b5bfa3e6189b3500b2d0d59dfab06c",
    "aup": "2c55bc3050caa996758869126ad10cf42e1441212111db034b3a45189c18b6fc",
    "awb": "d74a950c9739a65f7bfc4dfa6187f2730fa03de5b8eb3f2da97a51b74df64d3c",
    "axb": "dd65c3d2907d1ee52f86e44f578319159e60f4bf722a9142be01161d84e330ff",
    "bdl": "26b91aaf48b2799b2956792b4632c2f926cd0542f402b5452d5adecb60942904",
    "clb": "3f16dc3f3b97955ea22623efb33b444341013fc660677b2e170efdcc959fa7c6",
    "eey": "8a0ee4e5acbd4b2f61a4fb947c1730ab3adcc9dc50b195981d99391d29928e8a",
    "fem": "3fcff629412b57233589cdb058f730594a62c4f3a75c20de14afe06621ef45e2",
    "gka": "dc82e7967cbd5eddbed33074b0699128dbd4482b41711916d58103707e38c67f",
    "jmk": "3a37c0e1dfc91e734fdbc88b562d9e2ebca621772402cdc693bbc9b09b211d73",
    "ksp": "8029cafce8296f9bed3022c44ef1e7953332b6bf6943c14b929f468122532717",
    "ljm": "b23993765cbf2b9e7bbc3c85b6c56eaf292ac81ee4bb887b638a24d104f921a0",
    "lnh": "4faf34d71aa7112813252fb20c5433e2fdd9a9de55a00701ffcbf05f24a5991a",
    "rms": "c6dc11235629c58441c071a7ba8a2d067903dfefbaabc4056d87da35b72ecda4",
    "rxr": "1fa4271c393e5998d200e56c102ff46fcfea169aaa2148ad9e9469616fbfdd9b",
    "slp": "54345ed55e45c23d419e9a823eef427f1cc93c83a710735ec667d068c916abf1",
    "slt": "7c173297916acf3cc7fcab2713be4c60b27312316765a90934651d367226b4ea",
}
CMU_ARCTIC_SPEAKERS: tuple[str, ...] = tuple(_CMU_ARCTIC_SHA256)

# MNIST: the public references (pytorch/vision torchvision/datasets/mnist.py `resources`) publish only MD5s of
# the .gz files, and gzip headers (mtime, OS byte) differ between copies of the same data, so no SHA-256 of a
# .gz exists to pin: the gz entries carry None. The payload is pinned instead (see MNIST_SHA256_UNCOMPRESSED).
# Mirror order follows torchvision's, S3 first because yann.lecun.com has been answering 403 for years.
_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the *decompressed* MNIST idx files, keyed by uncompressed file name. Computed here from
# /work/shared/data/mnist/*.gz after checking that each decompresses to the reference bytes, i.e. to these
# MD5s of the uncompressed files: train-images 6bbc9ace898e44ae57da46a324031adb, train-labels
# a25bea736e30d166cdddb491f175f624, t10k-images 2646ac647ad5339dbf082846283269ea, t10k-labels
# 27ae3e4e09519cfbb04c329615203637. Check with sha256_of_gzip_payload(), whatever gzip wrapper a mirror serves.
MNIST_SHA256_UNCOMPRESSED: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Dataset name -> files to fetch. Entries that share a filename are mirrors of one file, listed in the order
# to try them; a None sha256 means no published SHA-256 exists and the caller must verify by other means.
DATASETS: dict[str, list[Resource]] = {
    "LJSpeech-1.1": [Resource(_LJSPEECH_URL, _LJSPEECH_SHA256, "LJSpeech-1.1.tar.bz2")],
    "CMU_ARCTIC": [
        Resource(
            f"http://festvox.org/cmu_arctic/packed/cmu_us_{speaker}_arctic.tar.bz2",
            sha256,
            f"cmu_us_{speaker}_arctic.tar.bz2",
        )
        for speaker, sha256 in _CMU_ARCTIC_SHA256.items()
    ],
    "MNIST": [Resource(mirror + name, None, name) for name in _MNIST_FILES for mirror in _MNIST_MIRRORS],
}

# Seconds before retry n (n = 1, 2, ...) is backoff * 2 ** (n - 1); module-level so tests can set it to zero.
_RETRY_BACKOFF_S = 1.0
_USER_AGENT = "zoo-download/1.0 (+urllib)"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")
# HTTP statuses worth retrying: the server may answer differently a moment later.
_TRANSIENT_HTTP = frozenset({408, 429, 500, 502, 503, 504})
# Failures while connecting or streaming that a retry (resuming from disk) can fix.
_TRANSIENT_ERRORS = (
    http.client.IncompleteRead,
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    TimeoutError,
)


class DownloadError(ZooError, RuntimeError):
    """A download or extraction failed; the message says what, where, and how to recover."""


class _Transient(Exception):
    """Internal: one attempt failed in a way a resumed retry may fix."""


def sha256sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so multi-GB archives never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of_gzip_payload(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a .gz file's decompressed bytes, independent of its gzip header."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not _SHA256_RE.match(value):
        raise ValueError(f"sha256 must be 64 hex digits, but got {sha256!r}")
    return value


def _manual_hint(url: str, dest: Path, sha256: str | None) -> str:
    check = f" (its SHA-256 must be {sha256})" if sha256 else ""
    return f"If you can fetch it another way, download {url} yourself and place it at {dest}{check}."


def _parse_content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None where absent or '*'."""
    if not header:
        return None, None
    match = _CONTENT_RANGE_RE.match(header.strip())
    if match is None:
        return None, None
    first = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return first, total


def _fetch_once(url: str, part: Path, *, timeout: float, chunk_size: int, progress: bool, label: str) -> None:
    """One request that appends to (or restarts) `part`; returns when the body is complete on disk."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        with err:
            if err.code == 416 and offset:
                # Our .part is at or past the end. If it is exactly the full size, the previous attempt finished
                # writing but not verifying; anything else is a stale file from some other version: start over.
                _, total = _parse_content_range(err.headers.get("Content-Range"))
                if total == offset:
                    return
                part.unlink()
                raise _Transient(f"HTTP 416 for a {offset}-byte partial file; restarting from zero") from err
            if err.code in _TRANSIENT_HTTP:
                raise _Transient(f"HTTP {err.code} {err.reason}") from err
            raise DownloadError(f"HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        reason = err.reason
        text = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
        if isinstance(reason, _TRANSIENT_ERRORS):
            raise _Transient(text) from err
        # DNS failure, connection refused, no route, TLS errors: retrying would only delay the same answer.
        raise DownloadError(text) from err
    except _TRANSIENT_ERRORS as err:
        raise _Transient(f"{type(err).__name__}: {err}") from err
    except http.client.HTTPException as err:
        # A malformed status line or headers: the server is not speaking HTTP we understand.
        raise DownloadError(f"{type(err).__name__}: {err}") from err

    with response:
        # file:// and ftp:// responses carry no status; they always deliver the whole file, like a 200.
        status = getattr(response, "status", None) or 200
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if status == 206:
            first, total = _parse_content_range(response.headers.get("Content-Range"))
            if first is not None and first != offset:
                # A server answering a different range than asked would splice garbage into the file.
                part.unlink()
                raise _Transient(f"server resumed at byte {first}, not {offset}; restarting from zero")
            mode = "ab"
            if total is None and length is not None:
                total = offset + length
        elif status == 200:
            # Either a fresh download or a server that ignores Range and resends everything: start from zero.
            offset, mode, total = 0, "wb", length
        else:
            raise DownloadError(f"unexpected HTTP status {status}")

        received = 0
        bar = tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, disable=not progress, leave=False,
        )
        try:
            with open(part, mode) as f:
                while True:
                    try:
                        # read1 hands over whatever has arrived, so bytes received before a stall or reset reach
                        # the disk and the retry resumes after them instead of re-fetching a buffered chunk.
                        chunk = response.read1(chunk_size)
                    except _TRANSIENT_ERRORS as err:
                        raise _Transient(f"{type(err).__name__} after {offset + received} bytes") from err
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        # http.client returns b"" instead of raising when the peer closes before Content-Length is reached.
        if length is not None and received < length:
            raise _Transient(f"connection closed after {offset + received} of {offset + length} bytes")


def download_file(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    *,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    retries: int = 3,
) -> Path:
    """Download `url` to `dest` via a resumable `dest.part`, verifying SHA-256 before the atomic rename."""
    if retries < 0:
        raise ValueError(f"retries must be >= 0, but got {retries}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, but got {chunk_size}")
    sha256 = _normalise_sha256(sha256)
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")

    if dest.exists():
        if sha256 is None:
            return dest
        actual = sha256sum(dest, chunk_size)
        if actual == sha256:
            return dest
        # We only ever rename verified files into place, so a bad `dest` was put there by hand: don't clobber it.
        raise DownloadError(
            f"{dest} already exists but its SHA-256 is {actual}, expected {sha256} (for {url}). "
            "Delete it to download again, or replace it with the correct file."
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    # Mirrors may serve different bytes for one file (MNIST's gzip headers differ), so bytes from one URL must
    # never be completed by another: remember the .part's source and start over when it changes. A .part with
    # no record (placed by hand) is trusted and resumed; the checksum has the last word either way.
    source = part.with_name(part.name + ".url")
    if part.exists() and source.exists() and source.read_text() != url:
        part.unlink()
    source.write_text(url)
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, timeout=timeout, chunk_size=chunk_size, progress=progress, label=dest.name)
            break
        except _Transient as err:
            attempt += 1
            if attempt > retries:
                kept = ""
                if part.exists():
                    kept = f" The {part.stat().st_size} bytes received are kept in {part}; rerun to resume."
                else:
                    source.unlink()
                raise DownloadError(
                    f"Could not download {url}: {err} (gave up after {retries} retries).{kept} "
                    + _manual_hint(url, dest, sha256)
                ) from err
            time.sleep(_RETRY_BACKOFF_S * 2 ** (attempt - 1))
        except DownloadError as err:
            if not part.exists():
                source.unlink()
            raise DownloadError(f"Could not download {url}: {err}. " + _manual_hint(url, dest, sha256)) from err

    if sha256 is not None:
        actual = sha256sum(part, chunk_size)
        if actual != sha256:
            # A resumed file with a bad hash cannot be repaired by resuming again: throw all of it away.
            part.unlink()
            source.unlink()
            raise DownloadError(
                f"Checksum mismatch for {url}: expected SHA-256 {sha256}, got {actual}. "
                "The corrupt download was deleted; retry later or use another mirror. "
                + _manual_hint(url, dest, sha256)
            )
    os.replace(part, dest)
    source.unlink()
    return dest


def _is_absolute(name: str) -> bool:
    return PurePosixPath(name).is_absolute() or bool(PureWindowsPath(name).anchor)


def _resolve_inside(name: str, symlinks: dict[str, str]) -> str | None:
    """Resolve archive-relative `name` through the archive's own symlinks; None if it leaves the root."""
    resolved: list[str] = []
    pending = list(reversed(name.split("/")))
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        if candidate in symlinks:
            hops += 1
            target = symlinks[candidate]
            # Same bound as the kernel's ELOOP; an archive needing more is hostile or broken.
            if hops > 40 or _is_absolute(target):
                return None
            # A symlink target is relative to the link's directory, which is exactly `resolved` here.
            pending.extend(reversed(target.split("/")))
            continue
        resolved.append(part)
    return "/".join(resolved)


def _refuse(archive: Path, name: str, why: str) -> DownloadError:
    return DownloadError(f"Refusing to extract {archive}: member {name!r} {why}. Nothing was extracted.")


def _validate_tar_members(archive: Path, members: list[tarfile.TarInfo]) -> None:
    # Every symlink in the archive counts when resolving paths, wherever it appears, so a link declared after
    # the member that walks through it is caught too.
    symlinks = {}
    for m in members:
        key = _resolve_inside(m.name, {}) if m.issym() else None
        if key:
            symlinks[key] = m.linkname
    for m in members:
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            kind = "a device file" if (m.ischr() or m.isblk()) else "a FIFO" if m.isfifo() else f"of type {m.type!r}"
            raise _refuse(archive, m.name, f"is {kind}")
        if _is_absolute(m.name):
            raise _refuse(archive, m.name, "has an absolute path")
        parent = _resolve_inside(posixpath.dirname(m.name), symlinks)
        resolved = _resolve_inside(m.name, {} if m.issym() else symlinks)
        if parent is None or resolved is None:
            raise _refuse(archive, m.name, "escapes the destination directory")
        if resolved == "" and not m.isdir():
            raise _refuse(archive, m.name, "would replace the destination directory itself")
        if m.issym():
            if _is_absolute(m.linkname):
                raise _refuse(archive, m.name, f"is a symlink to absolute path {m.linkname!r}")
            target = posixpath.join(posixpath.dirname(m.name), m.linkname)
            if _resolve_inside(target, symlinks) is None:
                raise _refuse(archive, m.name, f"is a symlink escaping the destination ({m.linkname!r})")
        if m.islnk():
            # Hard link targets are archive-relative, not link-relative.
            if _is_absolute(m.linkname) or _resolve_inside(m.linkname, symlinks) is None:
                raise _refuse(archive, m.name, f"is a hard link escaping the destination ({m.linkname!r})")


def _validate_zip_members(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    for info in infos:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            # zipfile would silently write these as regular files holding the link target / nothing.
            raise _refuse(archive, info.filename, "is a symlink or special file, unsupported in zip archives")
        if _is_absolute(info.filename) or "\\" in info.filename:
            raise _refuse(archive, info.filename, "has an absolute or non-POSIX path")
        if _resolve_inside(info.filename, {}) is None:
            raise _refuse(archive, info.filename, "escapes the destination directory")


def _member_key(m: tarfile.TarInfo) -> tuple:
    return m.name, m.type, m.linkname, m.size, m.mode


def _extract_tar(archive: Path, tmp: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        validated = tf.getmembers()
    _validate_tar_members(archive, validated)
    # Reopen and stream: extracting while iterating keeps compressed reads strictly forward, whereas
    # extractall() on the indexed TarFile would seek back and decompress the whole stream once more.
    with tarfile.open(archive, "r:*") as tf:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(tmp, members=_same_members(archive, tf, validated), **kwargs)


def _same_members(archive: Path, tf: tarfile.TarFile, validated: list[tarfile.TarInfo]):
    """Yield the streamed members, insisting they are the ones validated (the file may change in between)."""
    count = 0
    for member in tf:
        if count >= len(validated) or _member_key(member) != _member_key(validated[count]):
            raise DownloadError(f"Cannot extract {archive}: it changed while being extracted")
        count += 1
        yield member
    if count != len(validated):
        raise DownloadError(f"Cannot extract {archive}: it changed while being extracted")


def safe_extract(archive: str | Path, dest_dir: str | Path) -> Path:
    """Extract a tar(.gz/.bz2/.xz) or zip into `dest_dir` after refusing any member that could escape it."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DownloadError(f"Cannot extract {archive}: no such file")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    # A sibling on the same filesystem, so the final moves are renames, never copies.
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extracting-", dir=dest_dir.parent))
    try:
        try:
            # Tar first: a plain tar whose last member is a .zip would also pass is_zipfile().
            if tarfile.is_tarfile(archive):
                _extract_tar(archive, tmp)
            elif zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as zf:
                    _validate_zip_members(archive, zf.infolist())
                    zf.extractall(tmp)
            else:
                raise DownloadError(f"Cannot extract {archive}: not a tar, tar.gz, tar.bz2, tar.xz or zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as err:
            raise DownloadError(f"Cannot extract {archive}: corrupt or truncated archive ({err})") from err

        if not dest_dir.exists():
            os.chmod(tmp, 0o755)  # mkdtemp makes it 0700, wrong for a dataset directory others may read
            os.replace(tmp, dest_dir)
            return dest_dir
        # dest_dir already holds other things (often the archive itself): move our top-level entries in one by one,
        # each appearing atomically. The archive is authoritative, so a stale entry of the same name is replaced.
        for entry in sorted(tmp.iterdir()):
            target = dest_dir / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
        return dest_dir
    finally:
        # Only ever our own mkdtemp directory; a failure to delete it must not mask the real error.
        shutil.rmtree(tmp, ignore_errors=True)


def download_and_extract(
    url: str, root: str | Path, sha256: str | None, *, marker: str, progress: bool = True
) -> Path:
    """Download `url` into `root`, extract it there and drop `root/marker`; a no-op once the marker exists."""
    if not marker or "/" in marker or "\\" in marker or marker in (".", ".."):
        raise ValueError(f"marker must be a plain file name, but got {marker!r}")
    root = Path(root)
    marker_path = root / marker
    if marker_path.exists():
        return root
    filename = posixpath.basename(urllib.parse.urlparse(url).path)
    if not filename:
        raise ValueError(f"url must end in a file name, but got {url!r}")
    root.mkdir(parents=True, exist_ok=True)
    archive = download_file(url, root / filename, sha256, progress=progress)
    safe_extract(archive, root)
    # Written last and atomically: its presence is the only signal that extraction finished.
    tmp_marker = marker_path.with_name(marker_path.name + ".tmp")
    tmp_marker.write_text(f"{url}\n{sha256 or ''}\n")
    os.replace(tmp_marker, marker_path)
    return root
