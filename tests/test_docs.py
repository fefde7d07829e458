"""Docs are tested: every tool, setting, flag, policy key and decision code is documented, or a test fails."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from binance_mcp import docgen
from binance_mcp.catalog import ALL_TOOLS
from binance_mcp.policy.engine import CODES
from binance_mcp.policy.model import Policy
from binance_mcp.settings import ENVIRONMENT, SERVE_FLAGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REQUIRED = ["quickstart", "configuration", "tools", "policy", "approvals", "paper-trading", "security", "clients",
            "troubleshooting", "deployment"]


def read(name: str) -> str:
    return (DOCS / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", REQUIRED)
def test_required_doc_exists_and_is_not_empty(name):
    assert len(read(name)) > 500


@pytest.mark.parametrize("rel", sorted(docgen.GENERATED))
def test_generated_docs_are_up_to_date(rel, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert (ROOT / rel).read_text(encoding="utf-8") == docgen.GENERATED[rel](), (
        f"{rel} is stale: run python -m binance_mcp.docgen")


@pytest.mark.parametrize("tool", [t.name for t in ALL_TOOLS])
def test_every_tool_is_documented(tool):
    assert f"## {tool}\n" in read("tools")


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_variable_is_in_the_readme_and_the_configuration_reference(variable):
    assert variable in (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{variable}`" in read("configuration")


@pytest.mark.parametrize("flag", sorted(SERVE_FLAGS))
def test_every_serve_flag_is_documented(flag):
    assert f"`{flag}`" in read("configuration")


def _policy_keys(model: type[BaseModel], seen: set | None = None) -> set[str]:
    seen = set() if seen is None else seen
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        for arg in _models(field.annotation):
            if arg not in seen:
                seen.add(arg)
                keys |= _policy_keys(arg, seen)
    return keys


def _models(annotation) -> list[type[BaseModel]]:
    out = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        out += _models(arg)
    return out


@pytest.mark.parametrize("key", sorted(_policy_keys(Policy)))
def test_every_policy_key_is_in_the_policy_reference(key):
    text = read("policy")
    assert re.search(rf"`[a-z_.]*\b{re.escape(key)}\b[^`]*`", text), f"policy key {key!r} is not in docs/policy.md"


@pytest.mark.parametrize("code", CODES)
def test_every_decision_code_is_explained(code):
    assert code in read("policy")
    if code != "ALLOWED":
        assert f"`{code}`" in read("troubleshooting")


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    local = [link for link in links if not link.startswith("http")]
    assert local, "the README links to the docs"
    for link in local:
        assert (ROOT / link).exists(), link


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "binance-mcp demo" in first_block and "pytest" in first_block
