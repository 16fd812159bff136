"""fmnist_pgd_linf_0p2: pgd-at on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method pgd-at --eps 0.2 --epochs 10 --batch-size 256 --lr 0.002 --device cuda --out submissions/zoo/fmnist_pgd_linf_0p2.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_pgd_linf_0p2',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.2',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_pgd_linf_0p2.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.802,
 'training': {'method': 'pgd-at',
              'threat_model': 'Linf',
              'eps': '0.2',
              'pgd_steps': 10,
              'pgd_step_size': 0.05,
              'trades_beta': None,
              'fgsm_step_size': None,
              'epochs': 10,
              'batch_size': 256,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.802,
              'pgd20_acc': 0.681,
              'eval_n': 1000,
              'command': 'robint-bench train --method pgd-at --eps 0.2 --epochs 10 --batch-size '
                         '256 --lr 0.002 --device cuda --out '
                         'submissions/zoo/fmnist_pgd_linf_0p2.py',
              'epochs_run': 10,
              'seconds': 69.5,
              'cpu_seconds': 68.3,
              'device': 'cuda',
              'overfit_check': None,
              'check_pgd_acc': None,
              'best_epoch': None,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
