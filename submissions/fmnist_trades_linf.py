"""fmnist_trades_linf: trades on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --device cuda --data-dir .gpu/data --batch-size 256 --method trades --epochs 20 --lr 2e-3 --out /tmp/subs/fmnist_trades_linf.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_trades_linf',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_trades_linf.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.857,
 'training': {'method': 'trades',
              'threat_model': 'Linf',
              'eps': '0.1',
              'pgd_steps': 10,
              'pgd_step_size': 0.025,
              'trades_beta': 6.0,
              'epochs': 20,
              'batch_size': 256,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.857,
              'pgd20_acc': 0.766,
              'eval_n': 1000,
              'command': 'robint-bench train --device cuda --data-dir .gpu/data --batch-size 256 '
                         '--method trades --epochs 20 --lr 2e-3 --out '
                         '/tmp/subs/fmnist_trades_linf.py'}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
