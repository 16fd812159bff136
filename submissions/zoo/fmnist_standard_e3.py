"""fmnist_standard_e3: standard on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method standard --epochs 3 --seed 0 --batch-size 256 --lr 0.002 --device cpu --out submissions/zoo/fmnist_standard_e3.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_standard_e3',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_standard_e3.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.855,
 'training': {'method': 'standard',
              'threat_model': None,
              'eps': None,
              'pgd_steps': None,
              'pgd_step_size': None,
              'trades_beta': None,
              'fgsm_step_size': None,
              'epochs': 3,
              'batch_size': 256,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.855,
              'pgd20_acc': 0.011,
              'eval_n': 1000,
              'command': 'robint-bench train --method standard --epochs 3 --seed 0 --batch-size '
                         '256 --lr 0.002 --device cpu --out submissions/zoo/fmnist_standard_e3.py',
              'epochs_run': 3,
              'seconds': 941.0,
              'cpu_seconds': 457.3,
              'device': 'cpu, 1 thread',
              'overfit_check': None,
              'check_pgd_acc': None,
              'best_epoch': None,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
