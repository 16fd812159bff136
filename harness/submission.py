"""Compatibility path for submissions: ``from harness.submission import load_weights`` (the shipped submission
files, whose sha256 identifies their runs, import it from here). They live in harness.core.weights."""

from harness.core.weights import load_weights, sha256_file

__all__ = ["load_weights", "sha256_file"]
