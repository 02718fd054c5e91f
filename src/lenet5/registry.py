"""One small registry, used for everything looked up by name: models, datasets, losses,
optimizers, schedules, shipped weights.

    >>> losses = Registry("loss", "losses")
    >>> @losses.register("l1")
    ... def l1(): ...
    >>> losses.names()
    ['l1']
    >>> losses.get("l2")
    Traceback (most recent call last):
    lenet5.errors.Lenet5Error: unknown loss 'l2'; known losses: l1
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import Lenet5Error

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to entries of one ``kind`` (``plural``: its plural, default kind + "s"; both
    name the kind in the error for an unknown name)."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind, self.plural = kind, plural or kind + "s"
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a name is registered once."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@registry.register("name")``."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from bad metadata
            raise Lenet5Error(f"unknown {self.kind} {name!r}; known {self.plural}: "
                              f"{', '.join(self.names()) or 'none'}"
                              ) from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
