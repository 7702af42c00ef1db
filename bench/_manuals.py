"""Real manuals for the benchmarks, taken from Debian packages into ``bench/data/``.

Each manual is one PDF inside one Debian package. :func:`fetch_manual` downloads the package
with ``apt-get download`` and unpacks it with ``dpkg-deb -x`` into ``bench/data/<package>/``
(git-ignored), once: a later call finds the PDF there and does nothing. No network is needed
beyond the Debian archive the machine's apt is already set up for.

Benches use it as::

    from bench._manuals import fetch_manual
    pdf = fetch_manual("cpp-annotations")   # a 1,151-page PDF
    pdf = fetch_manual("r-exts")            # a 236-page PDF
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
        ),
        Manual(
            key="r-exts",
            package="r-doc-pdf",
            member="usr/share/R/doc/manual/R-exts.pdf",
            title="Writing R Extensions",
            pages=236,
        ),
    )
}


class FetchError(RuntimeError):
    """The package could not be downloaded or did not hold the expected PDF."""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def _download(package: str, into: Path) -> Path:
    """``apt-get download PACKAGE`` into ``into``; returns the .deb path.

    When the package is unknown (apt's lists were never fetched on a new machine) and we run
    as root, ``apt-get update`` is run once and the download retried.
    """
    result = _run(["apt-get", "download", package], into)
    if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        _run(["apt-get", "update"], into)
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
    try:
        manual = MANUALS[key]
    except KeyError:
        raise FetchError(f"unknown manual {key!r}; known: {', '.join(sorted(MANUALS))}") from None
    target = manual.path(data_dir)
    if target.is_file():
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    unpack_dir = manual.unpack_dir(data_dir)
    with tempfile.TemporaryDirectory(prefix=f".{manual.package}-", dir=data_dir) as tmp_name:
        tmp = Path(tmp_name)
        deb = _download(manual.package, tmp)
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
    manual = MANUALS[key]
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
