"""What the two-user test needs (no tests here): a copy of the server that other OS users can run, two throw-away
OS users, and commands run as one of them.

CI runs as root, and the Python the tests run on may live where no other user can read it (pyenv under /root, mode
0700). So each session builds a runtime of its own under /tmp: a copy of this repository's ``binance_mcp`` package
(and ``policies/``) and of every installed distribution ``binance-mcp-policy`` needs at run time (the
``importlib.metadata`` closure of its requirements, extras followed, test extras not), each copied file by file
from its RECORD, run with Debian's own ``/usr/bin/python3.11`` (world-readable) and ``PYTHONPATH`` pointing at the
copy. Nothing is downloaded: the copy is of what is installed here.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import binance_mcp

SYSTEM_PYTHON = "/usr/bin/python3.11"
DIST = "binance-mcp-policy"
REPO = Path(binance_mcp.__file__).resolve().parent.parent


# -- the runtime: the package and its run-time dependencies, readable by every user -------------------------------
def closure(name: str = DIST) -> dict[str, md.Distribution]:
    """``name`` and every distribution it needs at run time, by canonical name (extras asked for are followed)."""
    found: dict[str, tuple[md.Distribution, set[str]]] = {}
    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset())]
    while todo:
        dist_name, extras = todo.pop()
        key = canonicalize_name(dist_name)
        if key in found and extras <= found[key][1]:
            continue
        dist = md.distribution(dist_name)
        wanted = set(extras) | (found[key][1] if key in found else set())
        found[key] = (dist, wanted)
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *wanted)):
                todo.append((req.name, frozenset(req.extras)))
    return {key: dist for key, (dist, _) in found.items()}


def build_runtime(target: Path) -> Path:
    """Copy the package and its dependency closure into ``target`` (a directory for PYTHONPATH), world-readable."""
    target.mkdir(mode=0o755)
    for key, dist in closure().items():
        if key == canonicalize_name(DIST):
            continue  # this repository is installed editable: its files are the source tree, copied below
        for rel in dist.files or ():
            if rel.parts and rel.parts[0] == "..":  # console scripts in bin/: not needed
                continue
            src = Path(dist.locate_file(rel))
            if not src.is_file():
                continue
            _place(src, target / rel)
    ignore = shutil.ignore_patterns("*.pyc", "__pycache__")
    for name in ("binance_mcp", "policies"):  # policies/: the built-in policies (loader.builtin)
        shutil.copytree(REPO / name, target / name, ignore=ignore, copy_function=_place)
    # Byte-compile the package once (the dependencies came with their .pyc files), so each process starts quickly.
    subprocess.run([SYSTEM_PYTHON, "-m", "compileall", "-q", str(target / "binance_mcp")], check=True,
                   stdout=subprocess.DEVNULL)
    for root, _dirs, _files in os.walk(target):
        os.chmod(root, 0o755)
    return target


def _place(src: str | Path, dst: str | Path) -> None:
    """A hard link when the file is readable by everyone and on the same file system (copying 9,000 files takes
    seconds on a slow disk), else a copy made readable by everyone. A link's mode is never changed: it is the
    installed file's."""
    dst = Path(dst)
    if not dst.parent.is_dir():
        dst.parent.mkdir(mode=0o755, parents=True)
    mode = os.stat(src).st_mode
    if mode & 0o004:
        try:
            os.link(src, dst)
            return
        except OSError:  # another file system, or links not allowed: copy
            pass
    shutil.copy2(src, dst)  # the mtime too: a copied .pyc stays valid
    os.chmod(dst, stat.S_IMODE(mode) & 0o755 | 0o444)


# -- throw-away OS users -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OsUser:
    name: str
    home: Path
    uid: int
    gid: int

    def write(self, path: Path, text: str, mode: int = 0o600) -> Path:
        """A new file of this user's with ``text``, created with ``mode`` (never readable by others meanwhile)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return self.own(path, mode)

    def own(self, path: Path, mode: int) -> Path:
        """Give ``path`` to this user with ``mode``."""
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)
        return path


@contextmanager
def os_user(prefix: str, homes: Path) -> Iterator[OsUser]:
    """A new system user ``<prefix>-<random>`` with no login shell and a home (0755) under ``homes``; deleted at
    the end, whatever happened."""
    import pwd

    name = f"{prefix}-{secrets.token_hex(3)}"
    home = homes / name
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(home), "--shell", "/usr/sbin/nologin",
                    "--user-group", name], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        home.mkdir(mode=0o755)
        user = OsUser(name, home, entry.pw_uid, entry.pw_gid)
        user.own(home, 0o755)
        yield user
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


# -- commands run as a user ----------------------------------------------------------------------------------------
def user_env(user: OsUser, runtime: Path, **settings: str) -> dict[str, str]:
    """A clean environment for ``user``: none of ours (no keys, no BINANCE_* of the test run), the runtime on
    PYTHONPATH, and ``settings``."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(user.home), "LANG": "C.UTF-8", "PYTHONPATH": str(runtime),
            "PYTHONDONTWRITEBYTECODE": "1", **settings}


def as_user(user: OsUser, env: dict[str, str], *argv: str) -> list[str]:
    """Run it in the user's home (``python -m`` puts the working directory first on sys.path: not this checkout).
    The command line that runs ``argv`` as ``user`` with exactly ``env``: setpriv sets the user's uid, gid and
    groups and then executes the command itself (no parent process left to forward signals, unlike runuser), and
    ``env -i`` leaves nothing of root's environment."""
    return ["/usr/bin/setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", "--", "/usr/bin/env", "-i",
            *(f"{k}={v}" for k, v in env.items()), *argv]


def binance_mcp_as(user: OsUser, env: dict[str, str], *args: str) -> list[str]:
    return as_user(user, env, SYSTEM_PYTHON, "-m", "binance_mcp", *args)


def run_as(user: OsUser, env: dict[str, str], *argv: str, stdin: str | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(as_user(user, env, *argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                          cwd=user.home)


def not_root_reason() -> str | None:
    """Why the test cannot run here, or None: it needs root (useradd, setpriv) and Debian's python3.11."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the two-user test creates OS users (useradd) and runs commands as them (setpriv): it needs root"
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"the two-user test needs {tool}, which is not installed"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"the two-user test runs the server with {SYSTEM_PYTHON} (readable by every user), which is missing"
    return None


class Background:
    """A long-running command as a user (the simulator, the service), its stderr in a file; ``stop`` ends it by its
    own process id."""

    def __init__(self, user: OsUser, env: dict[str, str], argv: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(as_user(user, env, *argv), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=fh, cwd=user.home)

    def wait_for(self, pattern: str, limit: float = 60) -> re.Match:
        """The first match of ``pattern`` in the stderr log (start-up lines), waiting while the process runs."""
        deadline = time.monotonic() + limit
        while True:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} from {self.proc.args[-3:]} (exit {self.proc.poll()}); its "
                                     f"stderr:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def wait_listening(self, port: int, limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"nothing listens on 127.0.0.1:{port} (exit {self.proc.poll()}); "
                                         f"stderr:\n{self.log.read_text(errors='replace')[-3000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
