"""Loading a policy file: safe YAML (JSON is YAML) -> shape (pydantic) -> consistency checks.

Every error names the file, the line and the key, and says what to change. Only plain YAML is
accepted: tags that construct objects, huge files and deeply nested documents are load errors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from binance_mcp.catalog import BY_NAME, RISK_CLASSES
from binance_mcp.policy.model import Limits, Policy, Rule

MAX_BYTES = 256 * 1024
MAX_DEPTH = 12

# Which tools each limit can apply to. A limit on any other tool is a load error.
ORDER_TOOLS = frozenset({"binance_spot_place_order", "binance_futures_place_order"})
NOTIONAL_TOOLS = ORDER_TOOLS | {"binance_futures_close_position"}
FUTURES_ORDER = frozenset({"binance_futures_place_order"})
LIMIT_TOOLS: dict[str, frozenset[str]] = {
    "sides": ORDER_TOOLS,
    "order_types": ORDER_TOOLS,
    "max_notional_usd": NOTIONAL_TOOLS,
    "daily_notional_usd": NOTIONAL_TOOLS,
    "max_price_deviation_pct": ORDER_TOOLS,
    "max_open_orders": ORDER_TOOLS,
    "reduce_only": FUTURES_ORDER,
    "max_leverage": FUTURES_ORDER | {"binance_futures_change_leverage"},
    "max_position_notional_usd": FUTURES_ORDER,
}
APPROVAL_ABOVE_TOOLS = NOTIONAL_TOOLS


def symbol_tools() -> frozenset[str]:
    from binance_mcp.tools import all_tools

    return frozenset(t.name for t in all_tools() if "symbol" in t.args.model_fields)


class PolicyLoadError(Exception):
    """A policy that cannot be used; ``errors`` are lines like ``file:line: key: problem``."""

    def __init__(self, path: str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    source: str  # file path, or "built-in read-only"
    sha256: str
    lines: dict[tuple, int]

    def line_of(self, *path: object) -> int | None:
        return self.lines.get(tuple(path))


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent override in a policy is a trap)."""


def _no_duplicates(loader: _SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_SafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _lines(node: yaml.Node, path: tuple = (), out: dict | None = None, depth: int = 0) -> dict[tuple, int]:
    out = {} if out is None else out
    if depth > MAX_DEPTH:
        raise ValueError(f"the document is nested deeper than {MAX_DEPTH} levels")
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _lines(v, path + (key,), out, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), out, depth + 1)
    return out


def parse_text(text: str, source: str) -> LoadedPolicy:
    """Parse and validate policy text; raise PolicyLoadError with every problem found."""
    if len(text.encode()) > MAX_BYTES:
        raise PolicyLoadError(source, [f"{source}: the file is larger than {MAX_BYTES // 1024} KiB; a policy is a "
                                       "short list of rules"])
    try:
        node = yaml.compose(text, Loader=_SafeLoader)
        lines = _lines(node) if node is not None else {}
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = f"{problem}: YAML tags that build objects are not allowed in a policy"
        raise PolicyLoadError(source, [f"{where}: not valid policy YAML: {problem}"]) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise PolicyLoadError(source, [f"{source}: not a usable policy: {exc}"]) from None
    if data is None:
        raise PolicyLoadError(source, [f"{source}: the file is empty; write at least `version: 1` and `default: "
                                       "deny`"])
    if not isinstance(data, dict):
        raise PolicyLoadError(source, [f"{source}:1: the top level must be a mapping with keys such as version, "
                                       "default, classes, tools, account"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyLoadError(source, _format(exc, source, lines)) from None
    errors = check(policy, source, lines)
    if errors:
        raise PolicyLoadError(source, errors)
    return LoadedPolicy(policy, source, hashlib.sha256(text.encode()).hexdigest()[:16], lines)


def _where(source: str, lines: dict[tuple, int], path: tuple) -> str:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return f"{source}:{lines[path[:n]]}"
    return source


def _format(exc: ValidationError, source: str, lines: dict[tuple, int]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; see `binance-mcp policy schema` for the keys a policy may use"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        out.append(f"{_where(source, lines, loc)}: {key}: {msg}")
    return out


def check(policy: Policy, source: str, lines: dict[tuple, int]) -> list[str]:
    """Consistency checks the shape cannot express: tool names, and limits that cannot apply to their tool."""
    errors = []
    known = set(BY_NAME)
    with_symbol = symbol_tools()
    for name, rule in policy.tools.items():
        path = ("tools", name)
        if name not in known:
            close = [t for t in known if name.replace("binance_", "") in t][:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            errors.append(f"{_where(source, lines, path)}: tools.{name}: unknown tool{hint}")
            continue
        errors += _check_rule(rule, name, path, source, lines, with_symbol)
    for cls in RISK_CLASSES:
        rule = getattr(policy.classes, cls)
        if rule is None:
            continue
        path = ("classes", cls)
        if rule.limits is not None or rule.approval_above is not None:
            bad = "limits" if rule.limits is not None else "approval_above"
            errors.append(f"{_where(source, lines, path + (bad,))}: classes.{cls}.{bad}: limits and approval_above "
                          "belong to a tool rule (they depend on the tool's arguments); move them under tools.<name>")
    return errors


def _check_rule(rule: Rule, name: str, path: tuple, source: str, lines: dict[tuple, int],
                with_symbol: frozenset[str]) -> list[str]:
    errors = []
    if rule.approval_above is not None and name not in APPROVAL_ABOVE_TOOLS:
        errors.append(f"{_where(source, lines, path + ('approval_above',))}: tools.{name}.approval_above: only "
                      f"order tools have a notional ({', '.join(sorted(APPROVAL_ABOVE_TOOLS))}); use "
                      "action: require_approval instead")
    if rule.limits is None:
        return errors
    for key in Limits.model_fields:
        if getattr(rule.limits, key) is None:
            continue
        applies = with_symbol if key in ("symbols", "deny_symbols") else LIMIT_TOOLS[key]
        if name not in applies:
            p = path + ("limits", key)
            errors.append(f"{_where(source, lines, p)}: tools.{name}.limits.{key}: cannot apply to {name} "
                          f"(a {BY_NAME[name].risk if name in BY_NAME else 'policy'} tool); it applies to "
                          f"{', '.join(sorted(applies))}")
    return errors


def load_file(path: str | Path) -> LoadedPolicy:
    p = Path(path).expanduser()
    try:
        if p.stat().st_size > MAX_BYTES:
            raise PolicyLoadError(str(p), [f"{p}: the file is larger than {MAX_BYTES // 1024} KiB; a policy is a "
                                           "short list of rules"])
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyLoadError(str(p), [f"{p}: no such policy file"]) from None
    except UnicodeDecodeError:
        raise PolicyLoadError(str(p), [f"{p}: not UTF-8 text"]) from None
    except OSError as exc:
        raise PolicyLoadError(str(p), [f"{p}: cannot read: {exc.strerror}"]) from None
    return parse_text(text, str(p))


def shipped_path(name: str) -> Path:
    """A shipped policy file: inside the installed wheel (binance_mcp/_policies) or the repository's policies/."""
    here = Path(__file__).resolve().parent.parent
    for base in (here / "_policies", here.parent / "policies"):
        for suffix in ("", ".yaml", ".json"):
            candidate = base / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    raise PolicyLoadError(name, [f"shipped policy {name!r} not found next to the package"])


def builtin(name: str = "read-only") -> LoadedPolicy:
    """A shipped policy, loaded like any file, with its source marked as built-in."""
    path = shipped_path(name)
    loaded = parse_text(path.read_text(encoding="utf-8"), str(path))
    return LoadedPolicy(loaded.policy, f"built-in {name}", loaded.sha256, loaded.lines)
