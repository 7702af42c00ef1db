"""Real manuals for the benchmarks, taken from Debian packages into ``bench/data/``.

Each manual is one PDF inside one Debian package. :func:`fetch_manual` downloads the package
with ``apt-get download`` (the recorded version when the archive still has it, else the current
one) and unpacks it with ``dpkg-deb -x`` into ``bench/data/<package>/`` (git-ignored), once: a
later call finds the PDF there and does nothing. No network is needed beyond the Debian archive
the machine's apt is already set up for. Each entry records the package version, the PDF's
path inside the package, its SHA-256 and page count, so anyone can fetch the same file.

Two tables:

* :data:`MANUALS`, the manuals the latency and ingest benches load (``bench.search`` loads every
  one of them, so adding to it changes that bench's data);
* :data:`DEV_MANUALS`, the retrieval development set of issue 12: six manuals of different
  kinds, none of them used to tune the ranking before (``bench.retrieval`` asks their
  ``bench/questions/<key>.json``).

Benches use it as::

    from bench._manuals import fetch_manual
    pdf = fetch_manual("cpp-annotations")   # a 1,151-page PDF
    pdf = fetch_manual("r-exts")            # a 236-page PDF
    pdf = fetch_manual("glpk")              # any key of either table
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Manual:
    """A PDF manual shipped by a Debian package."""

    key: str
    package: str
    member: str  # the PDF's path inside the package, without the leading "./"
    title: str
    pages: int  # page count of the version the benches were written against
    version: str | None = None  # the Debian version the benches were written against
    sha256: str | None = None  # of that version's PDF
    kind: str = "-"  # what sort of document: tutorial, API reference, long book, ...

    def unpack_dir(self, data_dir: Path = DATA_DIR) -> Path:
        """Where the package is unpacked."""
        return data_dir / self.package

    def path(self, data_dir: Path = DATA_DIR) -> Path:
        """Where the PDF is once fetched."""
        return self.unpack_dir(data_dir) / self.member


MANUALS: dict[str, Manual] = {
    manual.key: manual
    for manual in (
        Manual(
            key="cpp-annotations",
            package="c++-annotations-pdf",
            member="usr/share/doc/c++-annotations/cplusplus.pdf",
            title="C++ Annotations (A4)",
            pages=1151,
            version="12.2.0-2",
            sha256="bc2681403511841b8a179e6d7896e66cd2a2e3bb051905592288d2489f558cb3",
            kind="long book",
        ),
        Manual(
            key="r-exts",
            package="r-doc-pdf",
            member="usr/share/R/doc/manual/R-exts.pdf",
            title="Writing R Extensions",
            pages=236,
            version="4.2.2.20221110-2",
            sha256="792220b273d40e8629664d5dd0d6ae4151419d14f613a949aebe85b8c2a1f85c",
            kind="developer guide",
        ),
    )
}

DEV_MANUALS: dict[str, Manual] = {
    manual.key: manual
    for manual in (
        Manual(
            key="glpk",
            package="glpk-doc",
            member="usr/share/doc/glpk-doc/glpk.pdf",
            title="GNU Linear Programming Kit Reference Manual, GLPK 5.0",
            pages=177,
            version="5.0-1",
            sha256="002d0328518a17b58919a2860b7f72d52594a73008f72c85f0dd70dfa138250f",
            kind="API reference",
        ),
        Manual(
            key="reportlab",
            package="python-reportlab-doc",
            member="usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf",
            title="ReportLab PDF Library User Guide 3.6.12",
            pages=134,
            version="3.6.12-1+deb12u1",
            sha256="91ad5429d7b2907b8efefd7b95facfe2fb01ec31b8cefb024e47b0a7ac713420",
            kind="user guide",
        ),
        Manual(
            key="r-intro",
            package="r-doc-pdf",
            member="usr/share/R/doc/manual/R-intro.pdf",
            title="An Introduction to R 4.2.2",
            pages=113,
            version="4.2.2.20221110-2",
            sha256="337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51",
            kind="tutorial",
        ),
        Manual(
            key="gmpl",
            package="glpk-doc",
            member="usr/share/doc/glpk-doc/gmpl.pdf",
            title="Modeling Language GNU MathProg: Language Reference, GLPK 5.0",
            pages=74,
            version="5.0-1",
            sha256="df54ba811d1fe3c041447b575997298d63b0a6366e39454ef2efc382f08203c2",
            kind="specification",
        ),
        Manual(
            key="erlang-kernel",
            package="erlang-doc",
            member="usr/lib/erlang/lib/kernel-8.5.3/doc/pdf/kernel-8.5.3.pdf",
            title="Erlang/OTP 25 Kernel 8.5.3 Reference Manual",
            pages=381,
            version="1:25.2.3+dfsg-1+deb12u4",
            sha256="d4497d7a3787820cd748c2c9febd20ae52f1a5089538a0fc9d92709201a95f50",
            kind="man-page collection",
        ),
        Manual(
            key="octave",
            package="octave-doc",
            member="usr/share/doc/octave/octave.pdf",
            title="GNU Octave 7.3.0 manual",
            pages=1158,
            version="7.3.0-2",
            sha256="ddd24489f87b46fbf99c15cc34aa865ae66775fb7c21927f7f2d6be9470becb8",
            kind="long book",
        ),
    )
}


class FetchError(RuntimeError):
    """The package could not be downloaded or did not hold the expected PDF."""


def find_manual(key: str) -> Manual:
    """The manual ``key`` of either table."""
    manual = MANUALS.get(key) or DEV_MANUALS.get(key)
    if manual is None:
        known = ", ".join(sorted({*MANUALS, *DEV_MANUALS}))
        raise FetchError(f"unknown manual {key!r}; known: {known}")
    return manual


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def _download(package: str, into: Path, version: str | None = None) -> Path:
    """``apt-get download PACKAGE[=VERSION]`` into ``into``; returns the .deb path.

    When the package is unknown (apt's lists were never fetched on a new machine) and we run
    as root, ``apt-get update`` is run once and the download retried. When the archive no
    longer has ``version``, the current version is downloaded instead (the benches check
    their answers against the PDF they get).
    """
    wanted = [f"{package}={version}", package] if version else [package]
    result = _run(["apt-get", "download", wanted[0]], into)
    if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        _run(["apt-get", "update"], into)
        result = _run(["apt-get", "download", wanted[0]], into)
    if result.returncode != 0 and len(wanted) > 1:
        result = _run(["apt-get", "download", package], into)
    if result.returncode != 0:
        raise FetchError(
            f"apt-get download {package} failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}; try `apt-get update` first"
        )
    debs = sorted(into.glob("*.deb"))
    if len(debs) != 1:
        raise FetchError(f"apt-get download {package} left {len(debs)} .deb files in {into}")
    return debs[0]


def fetch_manual(key: str, data_dir: Path = DATA_DIR) -> Path:
    """Return the path of manual ``key``'s PDF, downloading and unpacking it if needed.

    Idempotent: if the PDF is already unpacked under ``data_dir`` nothing is run. Unpacking
    happens in a temporary directory that is renamed into place, so an interrupted fetch
    leaves nothing half-done behind.
    """
    manual = find_manual(key)
    target = manual.path(data_dir)
    if target.is_file():
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    unpack_dir = manual.unpack_dir(data_dir)
    with tempfile.TemporaryDirectory(prefix=f".{manual.package}-", dir=data_dir) as tmp_name:
        tmp = Path(tmp_name)
        deb = _download(manual.package, tmp, manual.version)
        root = tmp / "root"
        result = _run(["dpkg-deb", "-x", str(deb), str(root)], tmp)
        if result.returncode != 0:
            raise FetchError(f"dpkg-deb -x {deb.name} failed: {result.stderr.strip()}")
        if not (root / manual.member).is_file():
            raise FetchError(f"{deb.name} has no {manual.member}")
        shutil.move(str(deb), str(root / deb.name))  # keep the .deb: it names the version
        if unpack_dir.exists():
            shutil.rmtree(unpack_dir)  # a stale tree without the PDF
        root.rename(unpack_dir)
    return target


def package_version(key: str, data_dir: Path = DATA_DIR) -> str | None:
    """The Debian version of the fetched package (from the kept .deb's name), if known."""
    manual = find_manual(key)
    for deb in manual.unpack_dir(data_dir).glob("*.deb"):
        parts = deb.stem.split("_")
        if len(parts) >= 2:
            return parts[1].replace("%3a", ":")
    return None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
