"""Bad input: patches the harness inside its own worker process so that its attack runs at eps 1e-6 under L2
and AutoAttack's apgd-dlr, whatever the parent resolved (the parent's configuration must still be what is stored)"""
from torch import nn

METADATA = {"name": "patches_harness", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    import harness.pipeline.resolve as resolve
    from harness.worker.session import WorkerSession

    original = WorkerSession._check

    def check(self, message):
        message["resolved"].update(eps=1e-6, eps_text="1e-06", threat_model="L2", attack="apgd-dlr")
        return original(self, message)

    WorkerSession._check = check
    resolve.resolve_config = lambda *a, **k: None  # the parent's copy is out of reach
    return Linear()
