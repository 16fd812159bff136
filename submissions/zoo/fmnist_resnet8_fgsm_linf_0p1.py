"""fmnist_resnet8_fgsm_linf_0p1: fgsm-rs on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method fgsm-rs --eps 0.1 --epochs 3 --arch resnet8-gap --lr 0.002 --device cuda --out submissions/zoo/fmnist_resnet8_fgsm_linf_0p1.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_resnet8_fgsm_linf_0p1',
 'dataset': 'fashion-mnist',
 'threat_model': 'Linf',
 'eps': '0.1',
 'architecture': 'resnet8-gap',
 'weights': 'fmnist_resnet8_fgsm_linf_0p1.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.849,
 'training': {'method': 'fgsm-rs',
              'threat_model': 'Linf',
              'eps': '0.1',
              'pgd_steps': None,
              'pgd_step_size': None,
              'trades_beta': None,
              'fgsm_step_size': 0.125,
              'epochs': 3,
              'batch_size': 128,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.849,
              'pgd20_acc': 0.668,
              'eval_n': 1000,
              'command': 'robint-bench train --method fgsm-rs --eps 0.1 --epochs 3 --arch '
                         'resnet8-gap --lr 0.002 --device cuda --out '
                         'submissions/zoo/fmnist_resnet8_fgsm_linf_0p1.py',
              'epochs_run': 3,
              'seconds': 22.0,
              'cpu_seconds': 21.7,
              'device': 'cuda',
              'overfit_check': 'PGD-10 (step 0.25 eps, seeded uniform start) after every epoch on '
                               'the last 500 training images, held out of training; a collapse: '
                               'below 0.5 x the best so far',
              'check_pgd_acc': '[0.63, 0.656, 0.666]',
              'best_epoch': 3,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
