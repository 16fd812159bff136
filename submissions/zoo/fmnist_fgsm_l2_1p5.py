"""fmnist_fgsm_l2_1p5: fgsm-rs on fashion-mnist, written by robint-bench's reference trainer.

Reproduce with:
    robint-bench train --method fgsm-rs --threat-model L2 --eps 1.5 --epochs 3 --lr 0.002 --out submissions/zoo/fmnist_fgsm_l2_1p5.py
"""

from pathlib import Path

import torch

from harness.architectures import build
from harness.submission import load_weights

METADATA = {'name': 'fmnist_fgsm_l2_1p5',
 'dataset': 'fashion-mnist',
 'threat_model': 'L2',
 'eps': '1.5',
 'architecture': 'gap-cnn',
 'weights': 'fmnist_fgsm_l2_1p5.pt',
 'authors': 'robint-bench reference trainer',
 'clean_acc': 0.828,
 'training': {'method': 'fgsm-rs',
              'threat_model': 'L2',
              'eps': '1.5',
              'pgd_steps': None,
              'pgd_step_size': None,
              'trades_beta': None,
              'fgsm_step_size': 1.875,
              'epochs': 3,
              'batch_size': 128,
              'optimizer': 'Adam, one-cycle lr max 0.002',
              'seed': 0,
              'n_train': None,
              'clean_acc': 0.828,
              'pgd20_acc': 0.551,
              'eval_n': 1000,
              'command': 'robint-bench train --method fgsm-rs --threat-model L2 --eps 1.5 --epochs '
                         '3 --lr 0.002 --out submissions/zoo/fmnist_fgsm_l2_1p5.py',
              'epochs_run': 3,
              'seconds': 1402.3,
              'cpu_seconds': 605.4,
              'device': 'cpu, 2 threads',
              'overfit_check': 'PGD-10 (step 0.25 eps, seeded uniform start) after every epoch on '
                               'the last 500 training images, held out of training; a collapse: '
                               'below 0.5 x the best so far',
              'check_pgd_acc': '[0.542, 0.546, 0.55]',
              'best_epoch': 3,
              'catastrophic_overfitting': None}}


def load_model() -> torch.nn.Module:
    model = build(METADATA["architecture"], in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name(METADATA["weights"])))
    return model.eval()
