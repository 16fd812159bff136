"""fmnist_standard: standard on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --device cuda --data-dir .gpu/data --batch-size 256 --method standard --epochs 8 --lr 2e-3 --out /tmp/subs/fmnist_standard.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_standard',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_standard.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.909,
 'training': {'method': 'standard',
              'threat_model': None,
              'eps': None,
              'pgd_steps': None,
              'pgd_step_size': None,
              'trades_beta': None,
              'epochs': 8,
              'batch_size': 256,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.909,
              'pgd20_acc': 0.0,
              'eval_n': 1000,
              'command': 'robint-bench train --device cuda --data-dir .gpu/data --batch-size 256 '
                         '--method standard --epochs 8 --lr 2e-3 --out '
                         '/tmp/subs/fmnist_standard.py'}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
