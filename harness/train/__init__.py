"""The reference trainer (standard, PGD-AT, TRADES, fast adversarial training FGSM-RS), its architectures, and the
model zoo's spec and training (``harness.train.zoo``)."""
