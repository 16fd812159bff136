"""The old home of the generic registry: it is :mod:`metrics.registry_base` now (this name stays importable)."""

from metrics.registry_base import Registry, UnknownNameError

__all__ = ["Registry", "UnknownNameError"]
