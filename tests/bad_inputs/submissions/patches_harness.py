"""Bad input: patches the harness inside its own worker process: its attack runs at eps 1e-6 under L2 whatever
the parent resolved (the attack it swaps is ``swaps_attack``'s case), and its explain step sends a score for a (method, metric) pair
that was never requested, with markdown and HTML in its details (the parent's configuration must be what is
stored, and the forged score must end the run)"""
from torch import nn

METADATA = {"name": "patches_harness", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        nn.init.zeros_(self.fc.weight)  # every answer class 0: none of the first 8 test images, so nothing is attacked
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    import harness.pipeline.resolve as resolve
    from harness.worker.session import WorkerSession

    original = WorkerSession._check

    def check(self, message):
        message["run"].update(eps=1e-6, threat_model="L2")
        return original(self, message)

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

    WorkerSession._check, WorkerSession._explain = check, explain
    resolve.resolve = lambda *a, **k: None  # the parent's copy is out of reach
    return Linear()
