"""The reference adversarial trainer (standard, PGD-AT, TRADES) and its architectures."""
