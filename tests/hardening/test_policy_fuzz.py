"""The policy loader on hostile files: it returns a policy or raises PolicyLoadError, nothing else, and the
server never trades on a file it cannot load: over stdio it starts locked (only binance_policy_status, which shows
the error; every other call POLICY_ERROR; a clear message on stderr, nothing but JSON-RPC on stdout), and
``serve --check`` exits 2 on it.

Hypothesis feeds ``parse_text`` arbitrary text, YAML-syntax soup, arbitrary nested data dumped as YAML and JSON,
and valid shipped policies with one value replaced. The explicit cases (empty, not YAML, huge, deeply nested, an
object-building tag, an alias bomb, not UTF-8, a directory) are also given to ``binance-mcp serve``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binance_mcp.catalog import TOOL_NAMES
from binance_mcp.policy.loader import MAX_BYTES, LoadedPolicy, PolicyLoadError, parse_text
from tests.hardening.helpers import COUNTS, RawStdio, raw_text, serve_cmd
from tests.helpers import clean_env, read_audit

HERE = Path(__file__).resolve().parents[2]
SHIPPED = sorted((HERE / "policies").glob("*.yaml"))
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- the property -------------------------------------------------------------------------------------------


def loads_or_refuses(text: str) -> LoadedPolicy | None:
    """parse_text's only outcomes: a policy, or PolicyLoadError with lines that name the source."""
    COUNTS["fuzzed policy inputs"] += 1
    try:
        loaded = parse_text(text, "fuzz.yaml")
    except PolicyLoadError as exc:  # anything else (TypeError, RecursionError, yaml errors...) fails the test
        assert exc.errors and all(isinstance(e, str) and e.startswith("fuzz.yaml") for e in exc.errors), exc.errors
        assert "Traceback" not in str(exc)
        return None
    assert isinstance(loaded, LoadedPolicy)
    assert loaded.policy.default in ("allow", "deny", "require_approval")
    return loaded


# -- strategies ---------------------------------------------------------------------------------------------
KEYS = ["version", "default", "mode", "classes", "tools", "account", "read", "financial", "destructive", "action",
        "reason", "limits", "rate_limit", "approval_above", "symbols", "deny_symbols", "sides", "order_types",
        "max_notional_usd", "daily_notional_usd", "max_leverage", "reduce_only", "max", "window", "notional_usd",
        "kill_switch_file", "max_open_orders", *TOOL_NAMES[:6]]
SCALARS = st.one_of(st.text(max_size=15), st.sampled_from(["allow", "deny", "require_approval", "shadow", "1/minute",
                                                            "BTCUSDT", "~", "null", ".nan", "-.inf", "0x1F", "1e3"]),
                    st.integers(), st.floats(), st.booleans(), st.none())
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(), st.booleans(), st.none()), inner,
    max_size=5), max_leaves=25)
YAML_SOUP = st.lists(st.sampled_from([*":-[]{}!&*#|>'\"\n ,?%@`\\\t0aZ.", "!!python/object/apply:os.system",
                                      "!!binary", "<<: *a", "&a ", "---\n", "...\n", "version: 1\n", "\ufeff", "\x00",
                                      "default: allow\n", "tools:\n  ", "  "]), max_size=60).map("".join)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    loads_or_refuses(text)


@FUZZ
@given(YAML_SOUP)
def test_yaml_syntax_soup(text):
    loads_or_refuses(text)


@FUZZ
@given(DATA)
def test_arbitrary_data_as_yaml_and_json(data):
    loads_or_refuses(yaml.safe_dump(data, allow_unicode=True))
    loads_or_refuses(yaml.dump(data))  # default style: flow collections, different quoting
    try:
        text = json.dumps(data)
    except (TypeError, ValueError):
        return
    loads_or_refuses(text)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def replaced(node, path, value):
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = replaced(copy[path[0]], path[1:], value)
    return copy


@FUZZ
@given(st.sampled_from(SHIPPED), st.data())
def test_a_shipped_policy_with_one_value_replaced(path, data):
    base = yaml.safe_load(path.read_text())
    where = data.draw(st.sampled_from(list(paths(base))))
    loads_or_refuses(yaml.safe_dump(replaced(base, where, data.draw(DATA))))


def test_the_shipped_policies_load():
    """The mutation test starts from policies that do load (so a mutant that loads is a real outcome)."""
    assert len(SHIPPED) >= 3
    for path in SHIPPED:
        assert loads_or_refuses(path.read_text()) is not None, path


# -- explicit files, given to the loader and to `binance-mcp serve` -----------------------------------------
def alias_bomb() -> str:
    lines = ["version: 1", "default: deny", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def broken_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a fragment the error must contain)."""
    marker = tmp / "pwned"
    texts = {
        "empty": ("", "empty"),
        "whitespace-only": ("\n   \n# only a comment\n", "empty"),
        "not-yaml": ("version: 1\ndefault: [allow\n  tools: {{{ : ]\n", "not valid policy YAML"),
        "top-level-list": ("- allow\n- deny\n", "top level must be a mapping"),
        "huge": ("version: 1\ndefault: deny\n" + "# padding padding\n" * (MAX_BYTES // 18 + 10),
                 "larger than 256 KiB"),
        "deeply-nested": ("version: 1\ndefault: deny\ntools: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper"),
        "deeply-nested-mapping": ("version: 1\ndefault: deny\ntools: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
                                  "nested deeper"),
        "python-object-tag": (f'version: 1\ndefault: !!python/object/apply:os.system ["touch {marker}"]\n',
                              "python/object/apply:os.system"),
        "python-name-tag": ("version: 1\ndefault: allow\ntools: !!python/name:os.system\n", "not allowed"),
        "alias-bomb": (alias_bomb(), "more than 100000 values"),
        "nul-bytes": ("version: 1\x00\ndefault: allow\n", "not a usable policy"),
        "unknown-key": ("version: 1\ndefault: allow\nallow_everything: true\n", "unknown key"),
    }
    out = {}
    for name, (text, fragment) in texts.items():
        path = tmp / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        out[name] = (path, fragment)
    latin1 = tmp / "latin1.yaml"
    latin1.write_bytes(b"version: 1\ndefault: allow\nreason: caf\xe9\xff\xfe\n")
    out["not-utf8"] = (latin1, "not UTF-8")
    out["directory"] = (tmp / "a-directory", "cannot read")
    (tmp / "a-directory").mkdir()
    out["missing"] = (tmp / "missing.yaml", "no such policy file")
    return out


def test_explicit_broken_files_are_refused_by_the_loader(tmp_path):
    from binance_mcp.policy.loader import load_file

    for name, (path, fragment) in broken_files(tmp_path).items():
        COUNTS["policy files refused"] += 1
        with pytest.raises(PolicyLoadError) as info:
            load_file(path)
        assert fragment in str(info.value), (name, str(info.value))
    assert not (tmp_path / "pwned").exists()


SERVE_CASES = ("empty", "not-yaml", "huge", "deeply-nested", "python-object-tag", "alias-bomb", "not-utf8")


def test_serve_starts_locked_on_each_broken_policy_and_check_refuses_it(tmp_path):
    """All at once (each is a subprocess). Over stdio: tools/list is binance_policy_status alone, its load_error has
    the file and the reason, an order is POLICY_ERROR with the same text, stderr says so clearly (no traceback, no
    dump of the file). ``serve --check``: exit 2, the reason on stderr, nothing on stdout.

    stdin of the checks stays open: a check that started a server anyway would wait on it and communicate() would
    expire."""
    cases = {name: case for name, case in broken_files(tmp_path).items() if name in SERVE_CASES}
    assert len(cases) == len(SERVE_CASES)
    env = clean_env()

    def env_of(name: str) -> dict[str, str]:
        path, _ = cases[name]
        return {**env, "BINANCE_MCP_POLICY": str(path), "BINANCE_MCP_STATE_DIR": str(tmp_path / "state" / name)}

    checks = {name: subprocess.Popen([*serve_cmd(), "--check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env_of(name)) for name in cases}
    servers = {name: RawStdio(env_of(name), tmp_path / f"{name}.stderr") for name in cases}
    try:
        for name, server in servers.items():
            path, fragment = cases[name]
            server.initialize()
            server.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            listed = server.wait_for([1])[0]["result"]["tools"]
            assert [t["name"] for t in listed] == ["binance_policy_status"], name
            status = server.call("binance_policy_status", {})
            assert status["isError"] is False, (name, status)
            shown = status["structuredContent"]
            assert shown["locked"] is True and str(path) in shown["load_error"], (name, shown)
            assert fragment in shown["load_error"], (name, shown["load_error"])
            order = server.call("binance_spot_place_order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                                             "quantity": "0.001"})
            assert order["isError"] is True and raw_text(order) == f"POLICY_ERROR: {shown['load_error']}", name
            assert server.close() == 0, name
            err = (tmp_path / f"{name}.stderr").read_text(errors="replace")
            assert "the policy cannot be loaded" in err and "starting LOCKED" in err and str(path) in err, (name, err)
            assert "Traceback" not in err, (name, err)
            assert len(err) < 6000, (name, len(err))  # a clear message, not a dump of the file
            for line in bytes(server.raw).splitlines():
                assert json.loads(line)["jsonrpc"] == "2.0", (name, line[:200])  # stdout: JSON-RPC only
            records = read_audit(tmp_path / "state" / name)
            assert [r.get("event") or r["decision"]["code"] for r in records] == [
                "server_locked", "ALLOWED", "POLICY_ERROR"], (name, records)
            COUNTS["locked starts"] += 1
        for name, proc in checks.items():
            out, err = proc.communicate(timeout=120)
            path, _ = cases[name]
            assert proc.returncode == 2, (name, err)
            assert "the policy cannot be loaded" in err and str(path) in err, (name, err)
            assert out == "" and "Traceback" not in err and len(err) < 4000, (name, err)
            COUNTS["serve --check refusals"] += 1
    finally:
        for server in servers.values():
            server.close()
        for proc in checks.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (tmp_path / "pwned").exists()
