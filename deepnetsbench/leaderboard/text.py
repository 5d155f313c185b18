"""Submitted text on the leaderboard: what is accepted, and how it is escaped when shown.

Everything a submitter writes (method name, version, link, training data, description,
notes, the environment strings) ends up in a Markdown table and on a web page. Validation
refuses control characters (a ``\\r`` in a name broke out of the README table), bidi
overrides and over-long fields, and accepts as a link only an ``http(s)`` URL made of URL
characters or a path to a file inside this repository; rendering escapes again anyway, so
neither layer alone has to be perfect.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deepnetsbench.errors import BenchError

__all__ = ["LIMITS", "check_text", "check_text_fields", "check_url", "md_escape", "md_url",
           "repo_path"]

#: Longest accepted value of each submitted text field (characters).
LIMITS = {"method.name": 80, "method.version": 40, "method.url": 300,
          "method.trained_on": 400, "method.training_budget": 120, "method.paper": 300,
          "method.description": 1000, "notes": 2000, "environment": 200}
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# RFC 3986 characters only (no space, quotes, angle brackets, backslash, braces, pipe);
# no user-info part (``https://good.org@evil.org``).
_URL = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
                  r"(?:[/?#][A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*)?$")
_REPO_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")


def _bad_char(text: str) -> str | None:
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs", "Co", "Cn"):
            return f"U+{ord(ch):04X}"  # tabs and newlines included: one-line text only
    return None


def check_text(value: str | None, field: str, source: str, limit: int) -> None:
    """Refuse control characters, bidi controls and values longer than ``limit``."""
    if not value:
        return
    if len(value) > limit:
        raise BenchError(f"{source}: {field} is {len(value)} characters long (at most {limit})",
                         f"shorten {field}")
    bad = _bad_char(value)
    if bad:
        raise BenchError(f"{source}: {field} contains the control character {bad}",
                         f"remove it: {field} must be plain one-line text")


def check_text_fields(res: Any, source: str) -> None:
    """Every submitted text field of a :class:`~deepnetsbench.results.Results`."""
    m = res.method
    for name in ("name", "version", "url", "trained_on", "training_budget", "paper",
                 "description"):
        check_text(getattr(m, name), f"method.{name}", source, LIMITS[f"method.{name}"])
    if m.paper and not _URL.match(m.paper):
        raise BenchError(f"{source}: method.paper is not an http(s) link made of URL "
                         "characters", "set it to the paper's address, e.g. "
                         "https://arxiv.org/abs/2110.13100, or leave it empty")
    check_text(res.notes, "notes", source, LIMITS["notes"])
    env = res.environment.model_dump()
    for key, value in env.items():
        if isinstance(value, str):
            check_text(value, f"environment.{key}", source, LIMITS["environment"])


def repo_path(url: str, repo: Path) -> Path | None:
    """The existing file or folder inside ``repo`` that ``url`` names as a relative path."""
    if not _REPO_PATH.match(url or "") or any(p in (".", "..") for p in url.split("/")):
        return None
    root = repo.resolve()
    target = (root / url).resolve()
    if not target.is_relative_to(root) or not target.exists():
        return None
    return target


def check_url(url: str | None, repo: Path) -> bool:
    """Whether ``url`` is an acceptable code link: http(s) made of URL characters, or a path
    to something inside the repository (the shipped baselines)."""
    if not url:
        return False
    if url.startswith(("http://", "https://")):
        return bool(_URL.match(url))
    return repo_path(url, repo) is not None


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no HTML, no Markdown syntax."""
    text = "".join(" " if (not ch.isprintable() or ch in _BIDI) else ch for ch in str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\|[]*_`~#!()":  # backslash first, so the added ones are not doubled
        text = text.replace(ch, "\\" + ch)
    return " ".join(text.split())


def md_url(url: str) -> str:
    """A validated URL as a Markdown link target: everything but plain URL characters
    percent-encoded (so parentheses, brackets and spaces cannot end the link)."""
    return quote(url, safe="-._~:/?#@!$&'*+,;=%")
