"""Numbers given as arguments: only plain ASCII numbers of sizes an exchange amount or id can have.

pydantic alone would quietly read true/false, '１' or '٣', '1_000', 10**40 or 1e-999999999 as numbers;
``plain_number`` runs before it (see ``Args`` in ``models.py``) and rejects them with a readable message.
"""

from __future__ import annotations

import re
import types
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

# A number given as text: ASCII digits only (Python's Decimal would read '１' or '٣' as digits, and '1_000' too).
INT_TEXT = re.compile(r"[+-]?[0-9]{1,25}")
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
MAX_INT = 2**63 - 1  # Binance's ids and times are signed 64-bit
MAX_WHOLE_DIGITS = 30  # any decimal argument: below 10**30 ...
MAX_DECIMALS = 18  # ... and at most 18 decimals (Positive amounts are stricter: 8)


def kinds_of(annotation: Any) -> frozenset:
    """The plain types an annotation accepts, through Optional, unions, Annotated and Literal."""
    out: set = set()
    stack = [annotation]
    while stack:
        a = stack.pop()
        origin = get_origin(a)
        if origin is Annotated:
            stack.append(get_args(a)[0])
        elif origin is Union or origin is types.UnionType:
            stack.extend(get_args(a))
        elif origin is Literal:
            out.update(type(v) for v in get_args(a))
        elif isinstance(a, type):
            out.add(a)
    return frozenset(out)


def plain_number(value: Any, kinds: frozenset) -> Any:
    """Reject what pydantic would quietly turn into a number: true/false, non-ASCII or underscored digits, and
    sizes no exchange amount or id has (10**40, 1e-999999999 would overflow or flood later arithmetic)."""
    exact = Decimal in kinds or float in kinds
    if not (exact or int in kinds) or str in kinds:
        return value
    if isinstance(value, bool):
        if bool in kinds:
            return value
        raise ValueError("true/false is not a number; give a number such as 1 or \"0.001\"")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 100:
            raise ValueError("too long for a number: at most 100 characters")
        if not (NUMBER_TEXT if exact else INT_TEXT).fullmatch(text):
            raise ValueError("give a plain number in ASCII digits, such as \"0.001\"" if exact else
                             "give a whole number in ASCII digits, such as 12")
        value = text
    if not exact:
        number = int(value) if isinstance(value, str) else value
        if isinstance(number, int) and number.bit_length() > 63:
            raise ValueError(f"out of range: at most {MAX_INT}")
        return value
    if isinstance(value, int) and value.bit_length() > 110:  # > 10**33: no str() of a huge int either
        raise ValueError(f"too large: at most {MAX_WHOLE_DIGITS} digits before the decimal point")
    if isinstance(value, (str, int, float, Decimal)):
        d = value if isinstance(value, Decimal) else Decimal(str(value))
        if d.is_finite() and d:
            _, digits, exp = d.as_tuple()
            while len(digits) > 1 and digits[-1] == 0:
                digits, exp = digits[:-1], exp + 1
            if len(digits) + exp > MAX_WHOLE_DIGITS:
                raise ValueError(f"too large: at most {MAX_WHOLE_DIGITS} digits before the decimal point")
            if -exp > MAX_DECIMALS:
                raise ValueError(f"too many decimal places: at most {MAX_DECIMALS}")
    return value
