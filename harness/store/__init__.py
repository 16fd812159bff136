"""The results database: schema, engine and transactions, migrations, queries, run liveness, archive and
RobustBench-format I/O. The parent process alone imports this package (the sandboxed worker never does)."""

from harness.store.engine import BUSY_TIMEOUT_S, open_database, transaction
from harness.store.queries import (
    all_runs,
    claim,
    completed_runs,
    effective_status,
    ensure_model,
    find_runs,
    get_or_create_model,
    get_run,
    runs_with_status,
)
from harness.store.schema import (
    COMPLETE,
    FAILED,
    INTERRUPTED,
    RUNNING,
    SCHEMA_VERSION,
    ArtifactRecord,
    Base,
    ExampleRecord,
    Meta,
    MetricRecord,
    ModelRecord,
    RunRecord,
    utcnow,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "COMPLETE",
    "FAILED",
    "INTERRUPTED",
    "RUNNING",
    "SCHEMA_VERSION",
    "ArtifactRecord",
    "Base",
    "ExampleRecord",
    "Meta",
    "MetricRecord",
    "ModelRecord",
    "RunRecord",
    "all_runs",
    "claim",
    "completed_runs",
    "effective_status",
    "ensure_model",
    "find_runs",
    "get_or_create_model",
    "get_run",
    "open_database",
    "runs_with_status",
    "transaction",
    "utcnow",
]
