"""Fetch the benchmark manuals from Debian packages into ``bench/data/`` (idempotent).

Usage::

    python -m bench.fetch_manuals                    # every manual
    python -m bench.fetch_manuals cpp-annotations    # just one
    python -m bench.fetch_manuals --list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/NAME.py` too

from bench._manuals import (
    DATA_DIR,
    DEV_MANUALS,
    MANUALS,
    FetchError,
    fetch_manual,
    package_version,
    sha256,
)

# The benches' manuals and the retrieval development set (issue 12).
KNOWN = {**MANUALS, **DEV_MANUALS}


def main(argv: list[str] | None = None) -> int:
    """Fetch the named manuals (all by default) and print where each PDF is."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument(
        "manuals", nargs="*", help=f"manual keys: {', '.join(sorted(KNOWN))} (default: all)"
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="default: bench/data")
    parser.add_argument("--list", action="store_true", help="list the known manuals and exit")
    args = parser.parse_args(argv)
    if args.list:
        for manual in KNOWN.values():
            print(f"{manual.key:16} {manual.package:20} {manual.pages:5} pages  {manual.title}")
        return 0
    status = 0
    for key in args.manuals or sorted(KNOWN):
        try:
            path = fetch_manual(key, args.data_dir)
        except FetchError as exc:
            print(f"{key}: {exc}", file=sys.stderr)
            status = 1
            continue
        version = package_version(key, args.data_dir) or "?"
        print(f"{key}: {path} ({KNOWN[key].package} {version}, sha256 {sha256(path)[:16]}…)")
    return status


if __name__ == "__main__":
    sys.exit(main())
