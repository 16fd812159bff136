"""The sandboxed worker and its wall: everything that runs a submission's code (sandbox, channel, protocol, the
worker's side of a run, contract checks, submission loading, RobustBench zoo models).

``python -I -m harness.worker`` starts a worker (harness/worker/__main__.py)."""
