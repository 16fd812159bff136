"""Attacks: threat models, AutoAttack, PGD, verification of adversarial examples, attack-sanity flags."""
