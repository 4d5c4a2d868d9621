"""MkDocs hooks (mkdocs.yml `hooks:`): keep the strict build honest as other pages come and go.

- Links from a page to files outside docs/ (`../example_dags/x.py`, `../README.md`) work on GitHub but not on
  the site: point them at the repository instead of failing the strict build.
- Optional pages (written by other parts of the project) join the nav when they exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

OPTIONAL_PAGES = {"data-types.md": "Data types", "contract.md": "The Celonis API contract"}
_OUTSIDE = re.compile(r"\]\(\.\./([^)#\s]+)(#[^)\s]*)?\)")


def on_config(config: Any) -> Any:
    docs = Path(config["docs_dir"])
    for nav_section in config["nav"] or []:
        if isinstance(nav_section, dict) and "Reference" in nav_section:
            listed = {next(iter(p.values())) for p in nav_section["Reference"]}
            for page, title in OPTIONAL_PAGES.items():
                if (docs / page).exists() and page not in listed:
                    nav_section["Reference"].insert(1, {title: page})
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    blob = f"{config['repo_url'].rstrip('/')}/blob/main/"
    return _OUTSIDE.sub(lambda m: f"]({blob}{m.group(1)}{m.group(2) or ''})", markdown)
