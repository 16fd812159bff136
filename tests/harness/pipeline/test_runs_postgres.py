"""The concurrency and storage tests of test_runs.py on a real PostgreSQL server (started by the tests:
tests/harness/store/postgres.py; skipped, with the reason, where the server or the driver is not installed).
Kill -9 and resume on a server is test_distributed.py's killed rank (a server whenever one is installed), so the
single-process kill test runs on SQLite only.

A separate module so that pytest-xdist (``--dist loadfile``) runs it beside test_runs.py, not after it.
"""

import pytest

from tests.harness.pipeline.test_runs import (  # noqa: F401  (collected here too, with this module's db_url)
    test_a_malformed_archive_is_one_error_line_and_imports_nothing,
    test_a_model_inserted_concurrently_is_reused_not_reported_as_damage,
    test_a_run_imported_concurrently_lands_once,
    test_export_import_results_leaderboard_round_trip,
    test_four_concurrent_runs_on_one_database_all_land,
    test_prune_removes_dead_runs_only,
)
from tests.harness.store.postgres import new_database


@pytest.fixture
def db_url(tmp_path):
    return new_database("postgresql", tmp_path)
