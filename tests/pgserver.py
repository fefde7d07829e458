"""A real PostgreSQL for the tests: a throwaway cluster (initdb) in a temporary directory, started on 127.0.0.1 on
a free port, one fresh database per test. Debian's server (``postgresql``) or any ``initdb`` on the PATH; as root
it runs as the ``postgres`` user (PostgreSQL refuses to run as root). Without a server the tests that need one
skip, unless BINANCE_MCP_PG_REQUIRED=1 (CI), where they fail."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REQUIRED = os.environ.get("BINANCE_MCP_PG_REQUIRED") == "1"
URL_ENV = "BINANCE_MCP_STATE_URL"


def bindir() -> Path | None:
    """The directory of initdb and postgres: the newest Debian server, else the PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin = bin_dir
        self.data = root / "data"
        self.sockets = root / "run"
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None
        self.user = None
        if os.geteuid() == 0:
            import pwd

            self.user = next(u for u in ("postgres", "nobody") if _has_user(pwd, u))
        self._names = itertools.count(1)

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        if self.user:
            shutil.chown(self.root, self.user)
            shutil.chown(self.sockets, self.user)
            self.root.chmod(0o700)
        subprocess.run(self._as_user([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                      "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]),
                       check=True, capture_output=True, timeout=120)

    def start(self, timeout: float = 30.0, durable: bool = False) -> None:
        """Start the server. fsync off unless ``durable`` (the benchmark): a test run has no power cut to survive;
        a commit is still written before it returns (synchronous_commit on, the default), so a killed server
        loses nothing it said was committed."""
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server's stderr while it runs
        fast = [] if durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(self._as_user([
            str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
            "-k", str(self.sockets), *fast,
            "-c", "max_connections=300", "-c", "shared_buffers=32MB"]), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        import psycopg

        while True:
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL did not start: " + (self.root / "server.log").read_text()[-2000:]) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend (the database "crashes"); ``start`` recovers it."""
        if self.proc is not None:
            subprocess.run(["pkill", "-KILL", "-s", str(self.proc.pid)], check=False)  # its own session: its children
            self.proc.wait(10)
            self.proc = None
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for lock in self.sockets.glob(".s.PGSQL.*"):  # the socket and its lock file, left by the crash
                lock.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None:
            try:  # the postmaster itself (not runuser): SIGINT is a fast shutdown, clients are not waited for
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGINT)
            except (OSError, ValueError, IndexError):
                self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database: its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def new_schema(self) -> str:
        """A fresh, empty schema of the cluster's own database (a millisecond, where a database takes 200): the URL
        of a store in it (its search_path). What one test needs: its own tables."""
        import psycopg

        name = f"s{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {name}")
        return f"{self.admin_url}?options=-csearch_path%3D{name}"


def _has_user(pwd, name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def start_server(durable: bool = False) -> PgServer | None:
    """A started throwaway cluster, or None when no server is installed (see REQUIRED)."""
    import tempfile

    found = bindir()
    if found is None:
        return None
    server = PgServer(Path(tempfile.mkdtemp(prefix="binance-mcp-pg-")), found)
    server.init()
    server.start(durable=durable)
    return server
