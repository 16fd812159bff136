"""Bad input: patches the harness so that the explain step sends a score for a (method, metric) pair that was
never requested, with markdown and HTML in its details"""
from torch import nn

METADATA = {"name": "forges_scores", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    from harness.worker.session import WorkerSession

    def explain(self, message):
        self.send({"op": "attributions", "method": "saliency", "main": self.x[:4].numpy(), "grid": None})
        self.send(
            {
                "op": "score",
                "method": "expected_gradients",
                "metric": "abpc",
                "values": [0.99] * 4,
                "details": {"note": "<script>alert(1)</script>\n# Best model | 0.99"},
            }
        )
        self.send({"op": "explained"})

    WorkerSession._explain = explain
    return Linear()
