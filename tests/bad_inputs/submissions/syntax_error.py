"""Bad input: a syntax error."""

METADATA = {"name": "syntax_error", "dataset": "fashion-mnist", "architecture": "none"}


def load_model(:
    pass
