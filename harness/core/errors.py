"""The one exception type the CLI turns into a single clear error line."""


class HarnessError(Exception):
    """A user-facing problem: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} -- {fix}" if fix else problem)


def fix_for(exc: BaseException, default: str) -> str:
    """The fix to suggest for an exception raised by a submission's own code."""
    if isinstance(exc, PermissionError):
        return (
            "the evaluation sandbox blocks network access, every file but the submission, the weights file its "
            "METADATA names and the Python installation, and (when robint-bench runs as root, its worker runs as a "
            "user of its own) files that only their owner may read: a submission must not need them"
        )
    if isinstance(exc, FileNotFoundError):
        return (
            'a submission may read only itself and the one weights file its METADATA names ("weights": a file '
            "next to it): declare the file, or put everything the model needs into it"
        )
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or "can't allocate" in str(exc).lower():
        return "the worker's memory limit was hit: raise --memory-limit or reduce --batch-size"
    return default
