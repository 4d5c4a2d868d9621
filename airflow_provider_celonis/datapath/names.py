"""Table and column names: one rule for both file types, checked before anything is read, converted or created.

Celonis recommends letters, digits, ``_`` and ``-`` only, and compares names case-insensitively; a name
with a space passes some of its checks and fails others, after the whole source was sent. So the client
refuses any other character up front, naming the name and the rule, or, with ``sanitize_names=True``,
maps each invalid character to ``_`` and says so in the log. Two names that end up equal (ignoring case)
are refused either way: silently merging two columns would lose data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from airflow_provider_celonis.hooks.errors import CelonisConfigError

#: Under ``airflow.task`` so that these lines land in the task log next to the operator's own.
log = logging.getLogger(f"airflow.task.{__name__}")

MAX_NAME_LENGTH = 128
NAME_RULE = f"use letters, digits, '_' and '-' only, at most {MAX_NAME_LENGTH} characters"
_VALID = re.compile(r"^[A-Za-z0-9_\-]+$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_\-]")


def same_names_reordered(one: Sequence[str], other: Sequence[str]) -> bool:
    """Whether two sources hold the same column names, each once, in another order (JSON writers order keys
    as they like; CSV exports and DataFrame chunks change their column order): rows are then matched by name,
    not position."""
    names = set(one)
    return len(names) == len(one) == len(other) and names == set(other)


def valid_name(name: str) -> bool:
    return bool(_VALID.match(name)) and len(name) <= MAX_NAME_LENGTH


def sanitize_name(name: str) -> str:
    """``name`` with every character outside the rule replaced by ``_``."""
    return _INVALID_CHARS.sub("_", name)


def check_table_name(name: str, what: str = "target_table") -> None:
    """Refuse a table name Celonis would reject, before any job is created."""
    text = str(name or "")
    if not text.strip():
        raise CelonisConfigError(f"{what} is empty")
    if not valid_name(text):
        raise CelonisConfigError(f"{what} {text!r} is not a valid Celonis table name: {NAME_RULE}")


def check_no_empty_name(names: Sequence[str], what: str) -> None:
    """Refuse a column without a name (no rule, sanitizing included, can name it)."""
    for position, name in enumerate(names, start=1):
        if not str(name).strip():
            last = " (the header line ends in a separator)" if position == len(names) > 1 else ""
            raise CelonisConfigError(f"{what}: column {position} has an empty name{last}")


def column_names(names: Sequence[str], *, sanitize: bool = False, what: str = "source") -> list[str]:
    """The names the columns land under: ``names`` when valid, else an error or (``sanitize``) fixed names.

    Raises ``CelonisConfigError`` naming the first offending column and the rule, or the two columns
    that clash (Celonis names are case-insensitive).
    """
    check_no_empty_name(names, what)
    out: list[str] = []
    seen: dict[str, str] = {}
    renamed: list[str] = []
    for raw in names:
        name = str(raw)
        final = name
        if not valid_name(name):
            if not sanitize or len(name) > MAX_NAME_LENGTH:
                hint = "" if sanitize else " (or pass sanitize_names=True to replace the others by '_')"
                raise CelonisConfigError(
                    f"{what}: column name {name!r} has characters Celonis rejects: {NAME_RULE}{hint}"
                )
            final = sanitize_name(name)
            renamed.append(f"{name!r} -> {final!r}")
        folded = final.lower()
        if folded in seen:
            first = seen[folded]
            how = "clash" if first.lower() == name.lower() else f"both become {final!r}"
            raise CelonisConfigError(
                f"{what}: columns {first!r} and {name!r} {how}: Celonis column names are case-insensitive"
            )
        seen[folded] = name
        out.append(final)
    if renamed:
        log.warning("%s: sanitize_names renamed column(s) %s", what, ", ".join(renamed))
    return out
