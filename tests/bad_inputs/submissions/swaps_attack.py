"""Bad input: patches the harness inside its own worker process so that its attack is AutoAttack's apgd-dlr (a
weaker attack against this model's loss landscape) whatever the parent resolved; the log of an attack that was
not requested must end the run before anything is stored as robust accuracy"""
from torch import nn

METADATA = {"name": "swaps_attack", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    from harness.worker.session import WorkerSession

    original = WorkerSession._check

    def check(self, message):
        message["run"].update(attack="apgd-dlr")
        return original(self, message)

    WorkerSession._check = check
    return Linear()
