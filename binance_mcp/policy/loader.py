"""Loading a policy file: safe YAML (JSON is YAML) -> shape (pydantic) -> consistency checks.

Every error names the file, the line and the key, and says what to change. Only plain YAML is
accepted: tags that construct objects, huge files and deeply nested documents are load errors.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from binance_mcp.catalog import BY_NAME, FUTURES_ORDER_TOOLS, NOTIONAL_TOOLS, ORDER_TOOLS, RISK_CLASSES
from binance_mcp.paths import BUILTIN_POLICIES
from binance_mcp.policy.model import Account, ApprovalAbove, DeadManSwitch, Limits, Policy, RateLimit, Rule

MAX_BYTES = 256 * 1024
MAX_DEPTH = 12
MAX_NODES = 100_000  # values after expanding YAML aliases (a "billion laughs" file is refused)

# Which tools each limit can apply to (from the catalogue's capabilities). A limit on any other tool is a load
# error.
FUTURES_ORDER = FUTURES_ORDER_TOOLS
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


@functools.cache
def order_types() -> dict[str, tuple[str, ...]]:
    """The order types each order tool accepts (from the tools' own input models)."""
    from typing import get_args

    from binance_mcp.tools.futures import FuturesType
    from binance_mcp.tools.spot import SpotType

    return {"binance_spot_place_order": get_args(SpotType), "binance_futures_place_order": get_args(FuturesType)}


def symbol_tools() -> frozenset[str]:
    """Tools with a ``symbol`` argument (from the generated schemas when present: no model building)."""
    from binance_mcp.tools.schemas import cached_schemas

    cached = cached_schemas()
    if cached:
        return frozenset(name for name, s in cached.items() if "symbol" in s["input"].get("properties", {}))
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


class _DocumentError(Exception):
    """A problem found while walking the YAML nodes, before anything is constructed."""

    def __init__(self, errors: list[str]):
        self.errors = errors


# Tags the safe loader builds plain values from; any other tag (e.g. !!python/object/apply) is refused.
_PLAIN_TAGS = frozenset(t for t in _SafeLoader.yaml_constructors if t is not None)


def _key_name(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _lines(node: yaml.Node, source: str) -> dict[tuple, int]:
    """Line of every key path; refuses object-building tags, duplicate keys, deep nesting and alias bombs."""
    out: dict[tuple, int] = {}
    problems: list[str] = []
    visits = 0
    stack: list[tuple[yaml.Node, tuple, int]] = [(node, (), 0)]
    while stack:  # iterative, so a deeply nested document cannot exhaust the interpreter's stack
        node, path, depth = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            raise _DocumentError([f"{source}:{node.start_mark.line + 1}: {_key_name(path)}: the document expands "
                                  f"to more than {MAX_NODES} values (YAML aliases?); a policy is a short list of "
                                  "rules"])
        if depth > MAX_DEPTH:
            raise _DocumentError([f"{source}:{node.start_mark.line + 1}: {_key_name(path)}: the document is nested "
                                  f"deeper than {MAX_DEPTH} levels; a policy needs at most 5"])
        if node.tag not in _PLAIN_TAGS:
            problems.append(f"{source}:{node.start_mark.line + 1}: {_key_name(path)}: the YAML tag {node.tag!r} is "
                            "not allowed in a policy (tags that build objects are refused); write a plain value")
            continue
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for k, v in node.value:
                line = k.start_mark.line + 1
                if not isinstance(k, yaml.ScalarNode):  # `{}:` or `? -`: a mapping or a list used as a key
                    problems.append(f"{source}:{line}: {_key_name(path)}: a key must be a plain name, not a list "
                                    "or a mapping")
                    continue
                key = k.value
                if isinstance(key, str) and key in first:
                    problems.append(f"{source}:{line}: {_key_name(path + (key,))}: duplicate key (first on line "
                                    f"{first[key]}); keep one")
                    continue
                first[key] = line
                out[path + (key,)] = line
                stack.append((v, path + (key,), depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + (i,), depth + 1) for i, v in enumerate(node.value))
    if problems:
        raise _DocumentError(sorted(problems, key=_line_number))
    return out


def _line_number(error: str) -> int:
    m = re.match(r".*?:(\d+): ", error)
    return int(m.group(1)) if m else 0


def parse_text(text: str, source: str) -> LoadedPolicy:
    """Parse and validate policy text; raise PolicyLoadError with every problem found."""
    if len(text.encode()) > MAX_BYTES:
        raise PolicyLoadError(source, [f"{source}: the file is larger than {MAX_BYTES // 1024} KiB; a policy is a "
                                       "short list of rules"])
    try:
        node = yaml.compose(text, Loader=_SafeLoader)
        lines = _lines(node, source) if node is not None else {}
        data = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a SafeLoader
    except _DocumentError as exc:
        raise PolicyLoadError(source, exc.errors) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in str(exc):
            problem = f"{problem}: YAML tags that build objects are not allowed in a policy"
        raise PolicyLoadError(source, [f"{where}: not valid policy YAML: {problem}"]) from None
    except RecursionError:
        raise PolicyLoadError(source, [f"{source}: the document is nested deeper than {MAX_DEPTH} levels; a policy "
                                       "needs at most 5"]) from None
    except (yaml.YAMLError, ValueError) as exc:
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


_KEYS = sorted({k for m in (Policy, Rule, Limits, Account, RateLimit, ApprovalAbove, DeadManSwitch) for k in m.model_fields})


def _format(exc: ValidationError, source: str, lines: dict[tuple, int]) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden" and loc[:1] == ("classes",) and len(loc) == 2:
            msg = f"unknown class; the classes are {', '.join(RISK_CLASSES)} (a single tool goes under tools:)"
        elif err["type"] == "extra_forbidden":
            key_name = str(loc[-1]) if loc else ""
            close = difflib.get_close_matches(key_name, _KEYS, n=1, cutoff=0.75)
            hint = (" here (it belongs in another section)" if key_name in _KEYS else
                    f" (did you mean {close[0]}?)" if close else "")
            msg = f"unknown key{hint}; see `binance-mcp policy schema` for the keys a policy may use"
        elif err["type"] == "literal_error":
            msg = f"{msg} (got {err.get('input')!r})"
        out.append(f"{_where(source, lines, loc)}: {key}: {msg}")
    return sorted(out, key=_line_number)


def check(policy: Policy, source: str, lines: dict[tuple, int]) -> list[str]:
    """Consistency checks the shape cannot express: tool names, and limits that cannot apply to their tool."""
    errors = []
    known = set(BY_NAME)
    with_symbol = symbol_tools()
    for name, rule in policy.tools.items():
        path = ("tools", name)
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.75)
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
    types = order_types().get(name)
    if rule.limits.order_types is not None and types is not None:
        for i, t in enumerate(rule.limits.order_types):
            if t not in types:
                p = path + ("limits", "order_types", i)
                errors.append(f"{_where(source, lines, p)}: tools.{name}.limits.order_types: {t!r} is not an order "
                              f"type of {name}; use {', '.join(types)}")
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


BUILTIN_NAMES = BUILTIN_POLICIES


def builtin_name(value: str | Path | None) -> str | None:
    """The shipped policy ``value`` names, when it is exactly one of BUILTIN_NAMES (no directory, no suffix);
    None for anything else, which is a path. The settings turn any other value into an absolute path, so
    ``BINANCE_MCP_POLICY=./spot-trader`` is the file of that name (a bare ``Path("./x")`` would read ``x``)."""
    text = value if isinstance(value, str) else str(value) if value is not None else ""
    return text if text in BUILTIN_NAMES else None


def load_named(value: str | Path) -> LoadedPolicy:
    """A built-in policy by its name, else the file at ``value``."""
    name = builtin_name(value)
    return builtin(name) if name else load_file(value)


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
