"""Errors of a city package, and the problem record that lets the loader report them all at once.

Every problem reads ``file: where: problem`` (``where`` is e.g. ``feature #12 (id 330102001001)``,
or absent for a whole-file problem), so an operator can fix a package in one pass instead of
one error per restart. geo.loader collects them in a :class:`Problems` per file and raises one
:class:`CityPackageError` listing them (``.errors``). A leaf module: geo.geocode raises the same
error for ``addresses.csv`` without importing the loader.
"""

from __future__ import annotations

from typing import Any


class CityPackageError(ValueError):
    """A city package that cannot be used. ``errors`` lists every problem found."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors if errors is not None else [message]


class Problems:
    """The problems found in one file so far (``file: where: problem`` lines)."""

    def __init__(self):
        self.items: list[str] = []

    def add(self, file: str, where: str | None, problem: str) -> None:
        self.items.append(f"{file}: {where}: {problem}" if where else f"{file}: {problem}")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:25]
        more = len(self.items) - len(shown)
        if len(self.items) == 1:
            message = self.items[0]
        else:
            message = f"城市包有 {len(self.items)} 处问题：\n  " + "\n  ".join(shown)
            if more:
                message += f"\n  ……另有 {more} 处问题"
        raise CityPackageError(message, list(self.items))


def where(kind: str, index: int, ident: Any = None) -> str:
    """The ``where`` of a problem: ``feature #12 (id 330102001001)``, or ``rule #3`` without an id."""
    return f"{kind} #{index}" + (f" (id {ident})" if ident not in (None, "") else "")

