"""``python -m harness`` is ``robint-bench``."""

from harness.cli import main

main()
