"""Install instructions work as written: written once (docs/clients.md; the README copies that block), never
offering the unpublished registry name as something that works, and every command they give has a real shape here:
the console scripts and extras exist in pyproject.toml, the arguments parse, the variables are settings, the policy
they name loads. What can run here runs (the programs' --help, from another directory)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from binance_mcp import docgen
from binance_mcp.cli import build_parser
from binance_mcp.policy.loader import load_named
from binance_mcp.settings import ENVIRONMENT, Settings, env_names
from tests.helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLIENTS = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
SETTINGS = {name for field in Settings.model_fields.values() for name in env_names(field)}


def scripts() -> dict[str, str]:
    section = PYPROJECT.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, re.M))


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def configs(text: str) -> list[dict]:
    """Every mcpServers entry of the JSON blocks."""
    out = []
    for block in blocks(text, "json"):
        data = json.loads(block)
        out += list(data.get("mcpServers", {}).values())
    return out


def runs(*args: str, tmp_path: Path) -> None:
    """``binance-mcp <args> --help`` parses and exits 0, from another directory, as the installed program would."""
    r = subprocess.run([sys.executable, "-m", "binance_mcp", *args, "--help"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (args, r.stdout + r.stderr)
    build_parser().parse_args(list(args))  # and the parser the console script uses takes them


# -- one copy ----------------------------------------------------------------------------------------
def test_the_install_block_is_written_once_and_the_readme_copies_it():
    assert CLIENTS.count(docgen.CLIENTS_START) == 1 and CLIENTS.count(docgen.CLIENTS_END) == 1
    assert README.count(docgen.CLIENTS_START) == 1 and README.count(docgen.CLIENTS_END) == 1
    assert README == docgen.render_readme(), "the README's install block is stale: run python -m binance_mcp.docgen"
    readme_block = README.split(docgen.CLIENTS_START, 1)[1].split(docgen.CLIENTS_END, 1)[0]
    assert blocks(readme_block, "json") == blocks(docgen.install_block(), "json")
    assert blocks(readme_block, "sh") == blocks(docgen.install_block(), "sh")


def test_no_second_copy_of_an_install_instruction():
    outside_readme = README.replace(README.split(docgen.CLIENTS_START, 1)[1].split(docgen.CLIENTS_END, 1)[0], "")
    assert '"mcpServers"' not in outside_readme and "uvx" not in outside_readme
    for doc in sorted((ROOT / "docs").glob("*.md")):
        if doc.name not in ("clients.md", "configuration.md"):  # configuration.md: generated --help text
            assert '"mcpServers"' not in doc.read_text(encoding="utf-8"), doc.name
    assert len(configs(docgen.install_block())) == 3  # A (a venv) and B (uvx), once each, and the bridge


REGISTRY_INSTALL = re.compile(r'(uvx|pip install|--from"?,?) +"?binance-mcp-policy')


def test_the_registry_name_is_never_offered_as_working_today():
    """Installing by the package's name works once it is published: every such mention says so."""
    mentions = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for paragraph in path.read_text(encoding="utf-8").split("\n\n"):
            if REGISTRY_INSTALL.search(paragraph.replace("\n", " ")):
                mentions += 1
                assert "published" in paragraph, f"{path.name}: {paragraph}"
    assert mentions >= 2  # the README's copy and docs/clients.md say it
    for config in configs(README) + configs(CLIENTS):
        assert "binance-mcp-policy" not in config["args"]


# -- the shapes ----------------------------------------------------------------------------------------
def test_a_clone_and_a_venv(tmp_path):
    block = docgen.install_block()
    (sh,) = [b for b in blocks(block, "sh") if "git clone" in b]
    assert "python3 -m venv .venv && .venv/bin/pip install ." in sh
    assert (ROOT / "pyproject.toml").is_file()  # `pip install .` from the clone's root
    assert 'echo "$PWD/.venv/bin/binance-mcp"' in sh
    (venv,) = [c for c in configs(block) if c["command"].endswith("/.venv/bin/binance-mcp") and c["args"] == ["serve"]]
    assert Path(venv["command"]).name in scripts() and scripts()["binance-mcp"] == "binance_mcp.cli:main"
    assert Path(venv["command"]).is_absolute()
    runs(*venv["args"], tmp_path=tmp_path)
    script = Path(sys.executable).with_name("binance-mcp")  # where pip put it in the venv running these tests
    if script.exists():
        r = subprocess.run([str(script), *venv["args"], "--help"], cwd=tmp_path, env=clean_env(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_uvx_from_a_path_or_the_git_url(tmp_path):
    block = docgen.install_block()
    (uvx,) = [c for c in configs(block) if c["command"].endswith("/uvx")]
    git = json.loads(re.search(r'the `args` are `(\["--from", "git\+[^`]+\])`', block).group(1))
    published = json.loads(re.search(r'`(\["--from", "binance-mcp-policy", [^`]+\])` will work', block,
                                     re.S).group(1).replace("\n", " "))
    for args in (uvx["args"], git, published):
        assert args[0] == "--from" and args[2] in scripts(), args
        runs(*args[3:], tmp_path=tmp_path)
    assert Path(uvx["args"][1]).is_absolute() and git[1].startswith("git+https://")
    assert re.search(r'^name = "binance-mcp-policy"$', PYPROJECT, re.M)  # the name it will be published under


def test_the_env_the_instructions_set_is_settings_and_the_policy_loads():
    for config in configs(docgen.install_block()):
        for name, value in config.get("env", {}).items():
            assert name in SETTINGS and name in ENVIRONMENT, name
            if name == "BINANCE_MCP_POLICY":
                assert load_named(value).source == f"built-in {value}"


def test_the_readme_starts_with_commands_that_exist():
    first = README.split("```sh", 1)[1].split("```", 1)[0]
    demo, tests = [line for line in first.splitlines() if line.startswith("python3 -m venv")]
    assert demo.endswith(".venv/bin/binance-mcp demo") and "demo" in build_parser()._subparsers._group_actions[0].choices
    assert '.venv/bin/pip install -e ".[test]"' in tests and "\ntest = [" in PYPROJECT
    assert tests.endswith(".venv/bin/python -m pytest")
    assert "@anthropic-ai/mcpb@" in tests  # the bundle test's validator (tests/test_bundle.py)


def test_the_bridge_config_runs_connect_with_a_token_file(tmp_path):
    """The separated setup's Claude Desktop entry: the venv program's ``connect`` with the service's default URL
    and an absolute token file, and no env (the bridge holds no key, policy or state)."""
    (bridge,) = [c for c in configs(docgen.install_block()) if c["args"][:1] == ["connect"]]
    assert bridge["command"].endswith("/.venv/bin/binance-mcp") and "env" not in bridge
    url, flag, token_file = bridge["args"][1:]
    assert url == "http://127.0.0.1:8765/mcp" and flag == "--token-file" and Path(token_file).is_absolute()
    runs(*bridge["args"], tmp_path=tmp_path)


def test_claude_codes_http_line_sends_the_token_to_the_services_url():
    (line,) = [line for line in CLIENTS.splitlines() if line.startswith("claude mcp add --transport http")]
    options, rest = line.split(" binance ", 1)
    assert '--header "Authorization: Bearer $(cat ' in options  # options before the name, as Claude Code wants
    assert rest == "http://127.0.0.1:8765/mcp"


@pytest.mark.parametrize("line", [line for line in CLIENTS.splitlines()
                                  if line.startswith(("claude mcp add", "npx @modelcontextprotocol/inspector"))
                                  and "--transport http" not in line])
def test_the_other_clients_commands_run_the_venv_program(line, tmp_path):
    program = re.search(r"(\S+/\.venv/bin/binance-mcp) (connect .*$|serve)", line)
    assert program, line
    runs(*(program.group(2).split() if program.group(2) != "serve" else ["serve"]), tmp_path=tmp_path)
    if "-e " in line:
        name = re.search(r"-e (\w+)=", line).group(1)
        assert name in SETTINGS
