"""The tools' JSON schemas: compacted from the pydantic models, and cached in ``schemas.json``.

``python -m binance_mcp.docgen`` writes ``schemas.json`` from ``generate_schemas``; a test keeps it equal to the
models. Start-up reads the file instead of building 72 schemas.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from binance_mcp.tools.models import ToolDef

SCHEMAS = Path(__file__).with_name("schemas.json")


BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
FOLDABLE = BOUNDS | {"type", "maxLength", "minLength", "pattern", "enum", "description"}
STRING = {"type": "string"}


def compact_schema(schema: dict, output: bool = False) -> dict:
    """Shrink a pydantic JSON schema for tools/list, which every session pays for in the agent's context.

    Drops titles, ``default: null`` and the models' docstrings (notes for us, not for the agent), writes 0.0 as 0,
    folds ``anyOf`` of plain types (optional fields, decimals that accept a number or a string) into one ``type``
    list, and says a fixed-length array that ends in items of one type (a [price, qty] pair, a row ending in
    decimals) with ``items``. A field that is not set has no ``null``: an argument not given is left out (null is
    still read as not given), and a result field that is not set is left out of the result (``exclude_none`` in
    ``tool.py``). Input schemas leave out lower bounds of 0 and 1 (positive amounts, ids and counts) and an empty
    ``properties``; the arguments' models still check them. Output schemas lose ``required`` and defaults, and
    below the top level name their plain string fields in ``propertyNames`` where that is shorter. What each of
    these saves is measured in bench/README.md (section 7).
    """

    def fold(node: dict) -> None:
        options = node["anyOf"]
        merged: dict = {}
        types: list[str] = []
        for opt in options:
            if not isinstance(opt, dict) or set(opt) - FOLDABLE or not isinstance(opt.get("type"), str):
                return
            for k, v in opt.items():
                if k == "type" or (k == "description" and "description" in node):  # the field's own text wins
                    continue
                if k in merged and merged[k] != v:
                    return
                merged[k] = v
            types.append(opt["type"])
        if "enum" in merged and set(types) - {"string", "null"}:
            return
        if "pattern" in merged and "number" in types:  # a number would skip the pattern: keep it exact
            return
        if "enum" in merged and "null" in types:
            merged["enum"] = [*merged["enum"], None]
        del node["anyOf"]
        node.update(merged, type=types if len(types) > 1 else types[0])

    def not_null(prop: Any) -> Any:
        if not isinstance(prop, dict):
            return prop
        prop = dict(prop)
        t = prop.get("type")
        if isinstance(t, list) and "null" in t:
            rest = [x for x in t if x != "null"]
            prop["type"] = rest[0] if len(rest) == 1 else rest
        if isinstance(prop.get("enum"), list) and None in prop["enum"]:
            prop["enum"] = [v for v in prop["enum"] if v is not None]
        options = prop.get("anyOf")
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            if len(rest) == 1 and isinstance(rest[0], dict) and not set(rest[0]) & set(prop):
                del prop["anyOf"]
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest
        return prop

    def by_name(node: dict) -> dict:
        """The same result object with its plain string fields (most of them: decimals are strings) named once in
        ``propertyNames`` instead of one ``{"type": "string"}`` each. Exactly the same results pass, and a field
        name the result does not have no longer does."""
        props = node["properties"]
        out = {k: v for k, v in node.items() if k != "properties"}
        typed = {n: p for n, p in props.items() if p != STRING}
        if typed:
            out["properties"] = typed
        return {**out, "propertyNames": {"enum": list(props)}, "additionalProperties": STRING}

    def walk(node: Any, parent_key: str | None = None, model: bool = False, root: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict = {}
        for k, v in node.items():
            if parent_key == "properties":  # a field name, not a keyword
                out[k] = walk(v, "properties_item")
                continue
            if k == "title" and isinstance(v, str) or k == "default" and (v is None or output):
                continue  # (a result's defaults say nothing: every field it has is sent)
            if k == "description" and model:  # a model's docstring
                continue
            if output and k == "required" and isinstance(v, list):
                continue  # the list only costs the agent's context (and a field that is not set is left out)
            if k in BOUNDS and isinstance(v, float) and v.is_integer():
                v = int(v)
            if k == "properties" and v == {} and not output:
                continue  # a tool without arguments
            if k == "$defs":
                out[k] = {name: walk(d, model=True) for name, d in v.items()}
            elif k == "properties" and isinstance(v, dict):
                out[k] = {name: not_null(p) for name, p in walk(v, k).items()}
            else:
                out[k] = walk(v, k)
        if "anyOf" in out:
            fold(out)
        if not output and parent_key == "properties_item":
            for k in ("minimum", "exclusiveMinimum"):  # a count, id, amount or price is positive: not worth the
                if out.get(k) in (0, 1):                # agent's context (the server still checks it)
                    del out[k]
        if output and not root and isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
            named = by_name(out)
            if len(json.dumps(named, separators=(",", ":"))) < len(json.dumps(out, separators=(",", ":"))):
                out = named
        prefix = out.get("prefixItems")
        if (isinstance(prefix, list) and prefix and "items" not in out and all(p == prefix[0] for p in prefix)
                and out.get("minItems") == out.get("maxItems") == len(prefix)):
            del out["prefixItems"]  # a pair of decimals: the same array, said once
            out["items"] = prefix[0]
        elif isinstance(prefix, list) and prefix and "items" not in out and out.get("maxItems") == len(prefix):
            tail = len(prefix)
            while tail > 1 and prefix[tail - 1] == prefix[-1]:
                tail -= 1
            if len(prefix) - tail > 1:  # a row ending in decimals: their type said once, for the rest of the row
                out["prefixItems"], out["items"] = prefix[:tail], prefix[-1]
        return out

    return walk(schema, model=True, root=True)  # a result's own fields stay under properties


def generate_schemas(tool_def: ToolDef) -> tuple[dict, dict]:
    """The compact input and output JSON schemas of a tool, from its pydantic models."""
    return (compact_schema(tool_def.args.model_json_schema()),
            compact_schema(tool_def.result.model_json_schema(mode="serialization"), output=True))


@functools.lru_cache(maxsize=1)
def cached_schemas() -> dict:
    """The contents of schemas.json (tool name -> {"input", "output"}); {} when it cannot be read."""
    try:
        return json.loads(SCHEMAS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def tool_schemas(tool_def: ToolDef) -> tuple[dict, dict]:
    """Schemas from schemas.json (generated by ``python -m binance_mcp.docgen``; a test keeps it equal to the
    models), so start-up does not build 72 schemas; computed from the models when a tool is not in it."""
    cached = cached_schemas().get(tool_def.name)
    if cached is not None:
        return cached["input"], cached["output"]
    return generate_schemas(tool_def)
