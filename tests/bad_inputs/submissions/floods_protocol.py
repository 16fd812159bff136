"""Bad input: writes to the protocol pipe itself: 1.5 GiB without a newline (MODE flood), or a line of
200,000 nested arrays (MODE nested); MODE quiet fails at once (the memory baseline of a failing run). A submission
reads no file but itself and its weights, so the test writes MODE into it."""
import os

METADATA = {"name": "floods_protocol", "dataset": "fashion-mnist", "architecture": "linear"}
MODE = "quiet"


def _protocol_fds():
    for name in os.listdir("/proc/self/fd"):
        try:
            flags = int(open(f"/proc/self/fdinfo/{name}").read().split("flags:")[1].split()[0], 8)
            if flags & 0o3 == os.O_WRONLY and os.readlink(f"/proc/self/fd/{name}").startswith("pipe:"):
                yield int(name)
        except (OSError, IndexError, ValueError):
            continue


def load_model():
    mode = MODE
    fds = [fd for fd in _protocol_fds() if fd > 2]
    if mode == "quiet":
        raise RuntimeError("no flood this time")
    if mode == "flood":
        block = b"x" * (1 << 20)
        for _ in range(1536):
            for fd in fds:
                os.write(fd, block)
    else:
        line = b'{"op":"loaded","metadata":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
        for fd in fds:
            os.write(fd, line)
    raise RuntimeError("not reached: the parent stops reading")
