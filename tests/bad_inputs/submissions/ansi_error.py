"""Bad input: an exception message with escape sequences that would draw a fake success line on a terminal"""
METADATA = {"name": "ansi_error", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    raise RuntimeError("\x1b[2K\r\x1b[32mstored run 000000000000\n  robust accuracy  99.00%\x1b[0m")
