"""fmnist_resnet8_standard: standard on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method standard --epochs 8 --arch resnet8-gap --batch-size 256 --lr 0.002 --device cuda --out submissions/zoo/fmnist_resnet8_standard.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_resnet8_standard',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'resnet8-gap',
 'weights': 'fmnist_resnet8_standard.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.933,
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
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.933,
              'pgd20_acc': 0.0,
              'eval_n': 1000,
              'command': 'robint-bench train --method standard --epochs 8 --arch resnet8-gap '
                         '--batch-size 256 --lr 0.002 --device cuda --out '
                         'submissions/zoo/fmnist_resnet8_standard.py',
              'epochs_run': 8,
              'seconds': 22.9,
              'cpu_seconds': 22.7,
              'device': 'cuda',
              'overfit_check': None,
              'check_pgd_acc': None,
              'best_epoch': None,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
