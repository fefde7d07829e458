"""How a human runs this program from a terminal: the command the APPROVAL_REQUIRED text carries.

The server's client (Claude Desktop, uvx) often starts it from a path that is not on the user's PATH, so a bare
``binance-mcp`` may not run in their shell. The rule, in order:

1. The server was started as the ``binance-mcp`` console script (a venv, pipx, uvx): that script's absolute path.
   ``sys.argv[0]`` is the script's path (a shebang script gets its full path; a Windows launcher is an .exe). Under
   uvx it is the script inside uv's cached environment (``.../uv/archive-v0/<hash>/bin/binance-mcp``), which stays
   there until ``uv cache clean`` or ``uv cache prune``: uvx sets ``UV`` and puts that directory first on PATH, but
   names neither the ``--from`` source nor its other options, so the uvx form cannot be rebuilt faithfully, and
   the cached script runs exactly the code that asked, without a download. ``binance-mcp-policy`` (the serve-only
   script) gives way to the ``binance-mcp`` beside it.
2. Anything else (``python -m binance_mcp``, an MCP Bundle run by uv, a test): this interpreter with
   ``-m binance_mcp``. When that interpreter imports the package only because of PYTHONPATH or the working
   directory (checked once, with ``-E`` from a neutral directory), the command sets PYTHONPATH to the package's
   parent directory (``env PYTHONPATH=...``; on Windows ``cd /d ... &&``).

``--state-dir`` is added when the server's state directory is not the built-in default (~/.local/state/binance-mcp).
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the directory that holds binance_mcp/
SCRIPT = "binance-mcp"


@dataclass(frozen=True)
class Program:
    """The command that runs ``binance-mcp``: ``argv``, with PYTHONPATH set to ``pythonpath`` when not None."""

    argv: tuple[str, ...]
    pythonpath: Path | None = None

    def command(self, *args: str, windows: bool | None = None) -> str:
        """The shell command that runs ``binance-mcp <args>``, quoted for the platform's shell."""
        windows = os.name == "nt" if windows is None else windows
        words = [*self.argv, *args]
        if windows:
            text = subprocess.list2cmdline(words)
            return f"cd /d {subprocess.list2cmdline([str(self.pythonpath)])} && {text}" if self.pythonpath else text
        if self.pythonpath is not None:
            words = ["env", f"PYTHONPATH={self.pythonpath}", *words]
        return shlex.join(words)


def _script(argv0: str) -> Path | None:
    """The ``binance-mcp`` console script ``argv0`` is (or sits beside, for ``binance-mcp-policy``), if any."""
    if not argv0:
        return None
    path = Path(argv0)
    stem = path.name[:-4] if path.name.lower().endswith(".exe") else path.name
    if stem.lower() not in (SCRIPT, SCRIPT + "-policy"):
        return None
    for candidate in (path.with_name(SCRIPT), path.with_name(SCRIPT + ".exe")):
        if candidate.is_file():
            return candidate.absolute()
    return None


def importable_without_help(executable: str) -> bool:
    """Does ``executable`` import this very package with no PYTHONPATH and no working-directory help?"""
    probe = "import binance_mcp, sys; sys.stdout.write(binance_mcp.__file__)"
    try:
        out = subprocess.run([executable, "-E", "-c", probe], cwd=tempfile.gettempdir(), capture_output=True,
                             text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    if out.returncode != 0 or not out.stdout:
        return False
    return Path(out.stdout).resolve().parent.parent == PACKAGE_ROOT


def program_of(argv0: str, executable: str, importable: Callable[[str], bool] = importable_without_help) -> Program:
    """The rule of this module's docstring, for a process started as ``argv0`` by ``executable``."""
    script = _script(argv0)
    if script is not None:
        return Program((str(script),))
    return Program((executable, "-m", "binance_mcp"), None if importable(executable) else PACKAGE_ROOT)


@functools.cache
def program() -> Program:
    """This process's program (computed once: it may start a Python subprocess)."""
    return program_of(sys.argv[0] if sys.argv else "", sys.executable)


def builtin_state_dir() -> Path:
    return Path.home() / ".local" / "state" / "binance-mcp"


def state_dir_args(state_dir: Path) -> tuple[str, ...]:
    """``--state-dir DIR`` unless DIR is the built-in default."""
    try:
        default = Path(state_dir).expanduser().resolve() == builtin_state_dir().resolve()
    except OSError:
        default = False
    return () if default else ("--state-dir", str(Path(state_dir).expanduser().absolute()))


def approvals_command(verb: str, approval_id: str, state_dir: Path, prog: Program | None = None,
                      extra: Sequence[str] = ()) -> str:
    """``<program> approvals <verb> <id> [--state-dir DIR]``, ready to paste."""
    return (prog or program()).command("approvals", verb, approval_id, *state_dir_args(state_dir), *extra)
