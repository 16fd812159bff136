"""Bad input: a load_model() that never returns while a thread writes heartbeats to the protocol pipe"""
import os
import threading
import time

METADATA = {"name": "fake_heartbeats", "dataset": "fashion-mnist", "architecture": "linear"}


def _protocol_fds():
    for name in os.listdir("/proc/self/fd"):
        try:
            flags = int(open(f"/proc/self/fdinfo/{name}").read().split("flags:")[1].split()[0], 8)
            if flags & 0o3 == os.O_WRONLY and os.readlink(f"/proc/self/fd/{name}").startswith("pipe:"):
                yield int(name)
        except (OSError, IndexError, ValueError):
            continue


def _beat():
    fds = list(_protocol_fds())
    while True:
        for fd in fds:
            os.write(fd, b'{"op":"heartbeat"}\n')
        time.sleep(0.1)


def load_model():
    threading.Thread(target=_beat, daemon=True).start()
    time.sleep(10**6)
