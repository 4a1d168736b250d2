"""The package's environment variables, read on every call so that a change takes effect at
the next call, and read cheaply: ``os.environ.get`` of an unset name raises and catches a
KeyError inside, which costs more than a small array's whole kernel."""
from __future__ import annotations

import os


def get(name: str) -> str | None:
    """``os.environ.get(name)``, without the exception for an unset name."""
    data = getattr(os.environ, "_data", None)  # CPython's dict behind os.environ, kept in sync by it
    if type(data) is not dict:
        return os.environ.get(name)
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = os.environ.encodekey(name)
    value = data.get(key)
    return None if value is None else os.environ.decodevalue(value)


_KEYS: dict[str, object] = {}
