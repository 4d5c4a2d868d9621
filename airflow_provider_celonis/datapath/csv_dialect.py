"""Which CSV dialect the client reads a file in (``file_type="PARQUET"``, where the client parses).

``csv_parsing_options`` describe the file to Celonis in pass-through; when the client parses instead, the
separator, quote, escape and character set apply to its reader too, and an option the reader cannot honour
is refused rather than ignored (a ``;``-separated file read with commas lands as one column). A ``.tsv`` file
is tab-separated without being told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from airflow_provider_celonis.datapath.text_read import ReadSettings, check_same_encoding
from airflow_provider_celonis.hooks.errors import CelonisConfigError

_APPLIED = {"separatorSequence", "quoteSequence", "escapeSequence", "charSet", "lineEnding"}
_SPELLED = {"\\t": "\t"}


def with_parsing_options(settings: ReadSettings, options: Mapping[str, Any] | None) -> ReadSettings:
    """``settings`` with ``csv_parsing_options``' separator, quote, escape and character set."""
    if not options:
        return settings
    refused = sorted(set(options) - _APPLIED)
    if refused:
        raise CelonisConfigError(
            f"csv_parsing_options: {', '.join(refused)} only apply where Celonis parses the file (file_type='CSV'); "
            "with file_type='PARQUET' the client reads it: convert those columns in the file, or push with "
            "file_type='CSV'"
        )
    found: dict[str, Any] = {}
    for option, field in (("separatorSequence", "delimiter"), ("quoteSequence", "quote_char")):
        value = options.get(option)
        if value:
            found[field] = _one_character(option, str(value))
    escape = options.get("escapeSequence")
    if escape and _one_character("escapeSequence", str(escape)) != found.get("quote_char", '"'):
        found["escape_char"] = _one_character("escapeSequence", str(escape))
    charset = options.get("charSet")
    if charset:
        check_same_encoding(settings.encoding, charset)
        found["encoding"] = str(charset)
    return replace(settings, **found)


def _one_character(option: str, value: str) -> str:
    value = _SPELLED.get(value, value)
    if len(value) != 1:
        raise CelonisConfigError(
            f"csv_parsing_options {option}={value!r}: the client reads one character here "
            "(file_type='PARQUET'); push with file_type='CSV' to have Celonis split on a longer sequence"
        )
    return value


def with_file_separator(settings: ReadSettings, paths: Sequence[Any], what: str) -> ReadSettings:
    """A tab for ``.tsv`` files unless a separator was given; files of both kinds together are refused."""
    if settings.delimiter is not None:
        return settings
    tabbed = [is_tsv(p) for p in paths]
    if all(tabbed):
        return replace(settings, delimiter="\t")
    if any(tabbed):
        raise CelonisConfigError(
            f"{what}: mixes .tsv (tab-separated) and other CSV files; push them separately, or give "
            "csv_parsing_options={'separatorSequence': ...} for all of them"
        )
    return settings


def is_tsv(path: Any) -> bool:
    name = str(getattr(path, "name", None) or path).lower()
    return name.endswith((".tsv", ".tsv.gz"))
