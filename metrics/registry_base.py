"""A generic named registry: decorator registration, clear errors on duplicates and unknown names.

Public: the metric, attribution-method, data-set, architecture and attack registries are all one of these."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name that is not registered: ``problem`` says which, ``fix`` lists close matches or the choices."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem} -- {fix}")


class Registry(Generic[T]):
    """Maps names to entries; ``kind`` names what the entries are in error messages, ``error(problem, fix)``
    builds the exception an unknown name raises (an application passes its own user-error type)."""

    def __init__(self, kind: str, *, error: Callable[[str, str], Exception] = UnknownNameError) -> None:
        self.kind, self._error = kind, error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second entry with the same name is an error."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorator(entry: T) -> T:
            return self.add(name, entry)

        return decorator

    def get(self, name: str) -> T:
        """Return the entry named ``name``; unknown names raise with "did you mean" suggestions."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"choose one of: {', '.join(self)}"
            raise self._error(f"unknown {self.kind} {name!r}", hint) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._entries.items())
