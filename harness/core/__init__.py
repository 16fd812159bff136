"""The harness's lowest layer: what every stage shares (errors, the run configuration and presets, threat models,
devices, thread sizing, weights loading, memory fitting, the schemas of untrusted records, the AutoAttack import).
It imports nothing else of the harness (the layers contract in pyproject.toml)."""
