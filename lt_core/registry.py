"""Named tables that user code can extend: architectures, mask criteria, mask-1 and mask-0 policies.

Each is a :class:`Registry`, filled with the built-ins when its module is imported and extended by
``lt_core.register_arch`` / ``register_criterion`` / ``register_mask1`` / ``register_mask0``. A
registry is *live*: config validation, the CLI's choices and the dashboard's menus read it when
they need it, so a name registered before them is accepted everywhere a built-in is. Looking up an
unknown name raises one :class:`~lt_core.errors.ConfigError` line naming the field, the value and
the names registered now, never a ``KeyError``.

Names are part of a run's identity (they are stored in its config and hashed into its folder name),
so a registered name cannot be redefined while registered: registering it again is an error.
"""

from __future__ import annotations

import re
from typing import Dict, Generic, Iterator, List, Tuple, TypeVar

from .errors import ConfigError

T = TypeVar("T")
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class Registry(Generic[T]):
    """An ordered ``name -> entry`` table; iterating it yields the names in registration order."""

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind  # what an entry is, for messages: "architecture", "criterion", ...
        self.field = field  # the config field naming an entry: "arch", "criterion", ...
        self._entries: Dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name`` (letters, digits, underscores; starting with a letter)."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ConfigError(f"{self.field}: {name!r} is not a valid {self.kind} name; use letters, digits "
                              "and underscores, starting with a letter")
        if name in self._entries:
            article = "an" if self.kind[0] in "aeiou" else "a"
            raise ConfigError(f"{self.field}: {article} {self.kind} named {name!r} is already registered; choose "
                              f"another name (registered: {', '.join(self._entries)})")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> T:
        """Unregister ``name`` (e.g. before re-running a notebook cell that registers it)."""
        entry = self[name]
        del self._entries[name]
        return entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"{self.field}: unknown value {name!r}; allowed values: "
                              f"{', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> Tuple[str, ...]:
        return tuple(self._entries)

    def values(self) -> List[T]:
        return list(self._entries.values())

    def items(self) -> List[Tuple[str, T]]:
        return list(self._entries.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self._entries)})"
