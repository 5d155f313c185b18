"""Lazy package exports: ``import deepnetsbench.x`` stays cheap and torch-free (the CLI's
``--help``), and a name's module is imported on first access."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves ``exports[name]`` (a submodule of
    ``package``) on first access; unknown names raise ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(name)
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__
