"""Run a real Milvus standalone server (PyPI ``milvus==2.3.5``, "embedded Milvus") for tests.

The ``milvus`` package ships the Milvus 2.3.5 standalone binary and its libraries as ``.lzma``
files. We do not use its ``MilvusServer`` class: its ``stop()`` sends SIGTERM and SIGKILLs after
one second, its ``start()`` sleeps up to 180 s when the process dies, and it unpacks ~250 MB into
every data dir. Instead we reuse two of its helpers (config writer, unpacker) and run the binary
ourselves:

* binaries are unpacked once into a cache dir (``$MILVUS_SERVER_BIN_DIR`` or
  ``~/.cache/archivist/milvus-server-<version>``; ~4 s, ~250 MB); CI can pre-unpack with
  ``python -m tests.milvus_server unpack``;
* every component is pinned to 127.0.0.1 (otherwise Milvus advertises the first non-loopback
  address and its components talk to each other over it);
* one process (``milvus run standalone``) in its own session/process group; no child processes.
  SIGINT shuts it down gracefully in ~1-3 s.

Ports: the proxy (gRPC + REST, what clients use) = ``port``; metrics/healthz = ``metrics_port``
(via the METRICS_PORT env var, so it need not be 9091); internal gRPC ports of the coordinators and
nodes are picked free near their defaults (53100, 19529, 19531, 21121-21124, 22930, 13333) and
listen on all interfaces (only ever reached via 127.0.0.1). The embedded etcd would bind the fixed
127.0.0.1:2379/2380 (so only one server per machine); we hand it an etcd config file
(``etcd.config.path``) with two free ports instead, so several servers can run side by side.
No MinIO (local storage) and no Pulsar (rocksmq).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_COMPONENTS = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexNode",
    "dataCoord",
    "dataNode",
)


class MilvusServerError(RuntimeError):
    """The server could not be started (or stopped) — the message carries its log tail."""


def milvus_package_version() -> str | None:
    """Version of the installed ``milvus`` package, or None if it is not installed."""
    try:
        import milvus
    except ImportError:
        return None
    return str(milvus.__version__)


def default_bin_dir() -> Path:
    env = os.environ.get("MILVUS_SERVER_BIN_DIR")
    if env:
        return Path(env)
    version = milvus_package_version() or "unknown"
    return Path.home() / ".cache" / "archivist" / f"milvus-server-{version}"


def unpack_binaries(bin_dir: Path | None = None) -> Path:
    """Unpack the server binary + libs into ``bin_dir/bin`` (no-op when up to date); return it."""
    import milvus

    base = bin_dir or default_bin_dir()
    base.mkdir(parents=True, exist_ok=True)
    milvus._initialize_data_files(str(base))  # checks md5 files, skips what is unpacked
    return base / "bin"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int, start: int = 0) -> str:
    """Last ``lines`` lines of a log after byte ``start``, minus a Go goroutine dump (the panic
    line above the dump is kept)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(start, f.tell() - 4_000_000))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    dump = text.find("\ngoroutine ")
    if dump != -1:  # a crash or the normal "panic: context canceled" exit: drop the stacks
        text = text[:dump] + "\n<goroutine dump cut>"
    return "\n".join(line[:400] for line in text.splitlines()[-lines:])


class MilvusServerProcess:
    """A Milvus 2.3.5 standalone server on 127.0.0.1:``port``, data under ``data_dir``.

    Example::

        with MilvusServerProcess(tmp / "milvus", free_port()) as srv:
            MilvusClient(srv.uri).list_collections()
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        metrics_port: int | None = None,
        bin_dir: Path | None = None,
        log_level: str = "warn",
        extra_config: dict[str, object] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self.bin_dir = bin_dir
        self.log_level = log_level
        self.extra_config = dict(extra_config or {})
        self.etcd_client_port = 0
        self.etcd_peer_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._log_file = self.data_dir / "logs" / "milvus-stdout.log"
        self._log_start = 0  # where this run's output begins in the (appended) log

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/healthz"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- start -------------------------------------------------------------------------------

    def _write_config(self) -> None:
        import milvus

        cfg = milvus.MilvusServerConfig(data_dir=str(self.data_dir), proxy_port=self.port)
        for comp in _COMPONENTS:
            cfg.set(f"{comp}.ip", "127.0.0.1")
        cfg.set("log.level", self.log_level)
        for key, value in self.extra_config.items():
            cfg.set(key, value)
        self.etcd_client_port, self.etcd_peer_port = free_port(), free_port()
        cfg.configs["etcd_port"] = self.etcd_client_port  # -> etcd.endpoints: localhost:PORT
        # Creates data/, logs/, configs/; binds then releases the ports it picks; writes
        # configs/milvus.yaml (the binary reads it from its cwd).
        cfg.resolve()
        etcd_yaml = self.data_dir / "configs" / "etcd.yaml"
        client = f"http://127.0.0.1:{self.etcd_client_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        etcd_yaml.write_text(
            "name: default\n"
            f"data-dir: {self.data_dir / 'data' / 'etcd.data'}\n"
            f"listen-client-urls: {client}\nadvertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n"
            f"log-outputs: [{self.data_dir / 'logs' / 'etcd.log'}]\n",
            encoding="utf-8",
        )
        milvus_yaml = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_yaml.read_text(encoding="utf-8")
        anchor = "  use:\n    embed: true"
        if anchor not in text:
            raise MilvusServerError(f"unexpected {milvus_yaml}: no etcd 'use: embed: true'")
        text = text.replace(anchor, f"  config:\n    path: {etcd_yaml}\n{anchor}", 1)
        milvus_yaml.write_text(text, encoding="utf-8")

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        etcd_log = self.data_dir / "logs" / "etcd.log"
        if etcd_log.exists():
            parts += [f"--- {etcd_log} ---", _tail(etcd_log, 5)]
        # Milvus' own output last: a startup failure ends with its "panic: ..." line.
        parts += [f"--- {self._log_file} ---", _tail(self._log_file, lines, self._log_start)]
        return "\n".join(parts)

    def _fail(self, what: str) -> MilvusServerError:
        return MilvusServerError(f"Milvus server {what}\n{self.log_tail()}")

    def _own_ports(self) -> tuple[int, ...]:
        return tuple(
            p
            for p in (self.port, self.metrics_port, self.etcd_client_port, self.etcd_peer_port)
            if p
        )

    def _check_ports_free(self) -> None:
        busy = [p for p in self._own_ports() if port_in_use(p)]
        if busy:
            raise MilvusServerError(f"cannot start Milvus: 127.0.0.1 ports {busy} are in use")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as resp:
                if b"OK" not in resp.read():
                    return False
        except (urllib.error.URLError, OSError):
            return False
        from pymilvus import MilvusClient

        client = None
        try:
            client = MilvusClient(self.uri, timeout=5)
            client.list_collections()
            return True
        except Exception:
            return False
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    def start(self, timeout: float = 120.0) -> MilvusServerProcess:
        if self.running():
            return self
        if milvus_package_version() is None:
            raise MilvusServerError(
                "the 'milvus' package is not installed: pip install milvus==2.3.5"
            )
        binary = unpack_binaries(self.bin_dir) / "milvus"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._check_ports_free()
        env = dict(os.environ)
        env.update(
            DEPLOY_MODE="STANDALONE",
            METRICS_PORT=str(self.metrics_port),
            MILVUS_RUN_DIR=str(self.data_dir / "run"),
            LD_LIBRARY_PATH=":".join(
                p for p in (str(binary.parent), os.environ.get("LD_LIBRARY_PATH", "")) if p
            ),
        )
        t0 = time.monotonic()
        with self._log_file.open("ab") as log:
            self._log_start = log.tell()
            self.proc = subprocess.Popen(
                [str(binary), "run", "standalone"],
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg never hits pytest
            )
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise self._fail(f"exited with code {code} during startup")
            if self._ready():
                self.startup_seconds = time.monotonic() - t0
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise self._fail(f"not ready after {timeout:.0f}s ({self.health_url})")
            time.sleep(0.25)

    # -- stop --------------------------------------------------------------------------------

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT, wait up to ``grace`` seconds, then SIGKILL the process group.

        Milvus 2.3.5 usually exits 1-2 s after SIGINT (with a harmless "panic: context canceled"
        and a goroutine dump in its log, exit status -6), but its shutdown can hang for minutes
        when a collection was dropped/released just before: queryCoord keeps retrying the
        already-stopped rootCoord. A test server's data is throwaway, so SIGKILL is fine then.
        """
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
            # The group has one member normally; this also ends a hung shutdown.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._wait_ports_free(self._own_ports(), 15.0)

    @staticmethod
    def _wait_ports_free(ports: Iterable[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        busy = list(ports)
        while busy:
            busy = [p for p in busy if port_in_use(p)]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise MilvusServerError(f"ports {busy} still in use after stopping Milvus")
            time.sleep(0.1)

    def __enter__(self) -> MilvusServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _main(argv: list[str]) -> int:
    """``python -m tests.milvus_server unpack`` (pre-unpack for CI) or ``run DIR [PORT]``."""
    if argv[:1] == ["unpack"]:
        t0 = time.monotonic()
        print(unpack_binaries(), f"({time.monotonic() - t0:.1f}s)")
        return 0
    if argv[:1] == ["run"] and len(argv) >= 2:

        def _interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # Also when started with SIGINT ignored (e.g. `cmd &` from a script).
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        srv = MilvusServerProcess(Path(argv[1]), int(argv[2]) if len(argv) > 2 else 19530)
        srv.start()
        print(f"Milvus ready at {srv.uri} in {srv.startup_seconds:.1f}s; Ctrl+C stops it")
        try:
            while srv.running():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
        return 0
    print(_main.__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
