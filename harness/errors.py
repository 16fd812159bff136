"""The one exception type the CLI turns into a single clear error line."""


class HarnessError(Exception):
    """A user-facing problem: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} -- {fix}" if fix else problem)
