"""fmnist_standard_s2: standard on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method standard --epochs 8 --seed 2 --batch-size 256 --lr 0.002 --out submissions/zoo/fmnist_standard_s2.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_standard_s2',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_standard_s2.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.908,
 'training': {'method': 'standard',
              'threat_model': None,
              'eps': None,
              'pgd_steps': None,
              'pgd_step_size': None,
              'trades_beta': None,
              'fgsm_step_size': None,
              'epochs': 8,
              'batch_size': 256,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 2,
              'n_train': None,
              'clean_acc': 0.908,
              'pgd20_acc': 0.001,
              'eval_n': 1000,
              'command': 'robint-bench train --method standard --epochs 8 --seed 2 --batch-size '
                         '256 --lr 0.002 --out submissions/zoo/fmnist_standard_s2.py',
              'epochs_run': 8,
              'seconds': 3594.3,
              'cpu_seconds': 1318.7,
              'device': 'cpu, 2 threads',
              'overfit_check': None,
              'check_pgd_acc': None,
              'best_epoch': None,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
