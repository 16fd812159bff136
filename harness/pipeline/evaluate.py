"""One evaluation run, from the parent's side: the only process that writes to the database.

``evaluate(config)`` is the library entry point; the CLI only builds a :class:`RunConfig`. The submission's code
runs in a sandboxed worker (harness/worker/) unless ``config.trusted``; the parent validates everything that
comes back (adversarial examples are re-checked against its own copy of the data) and commits progress per
attack chunk and per (method, metric) score, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from harness import store
from harness.attack.registry import parse_attack
from harness.attack.sanity import masking_flags
from harness.config import ResolvedConfig, RunConfig
from harness.data import get_dataset, load_examples
from harness.pipeline import batching, distributed, validate
from harness.pipeline.attack import Reclassifier, probe_chunks, store_chunk
from harness.pipeline.explain import explain_and_score
from harness.pipeline.featurevis import missing_featurevis, visualise_and_score
from harness.pipeline.figures import write_run_figures
from harness.pipeline.lifecycle import Plan, StageTimer, fail, finish, plan
from harness.pipeline.limits import Budgets, open_channel
from harness.pipeline.resolve import check_options, resolve_config, resolve_featurevis, resolve_suite
from harness.pipeline.source import locate
from harness.store.files import run_files_dir

__all__ = ["RunConfig", "RunSummary", "evaluate"]


@dataclass
class RunSummary:
    """What ``evaluate`` reports back."""

    run_id: str
    model: str
    config: ResolvedConfig
    clean_acc: float
    robust_acc: float
    reused: bool = False
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def evaluate(config: RunConfig) -> RunSummary:
    """Evaluate one submission and store the run: load, check, attack, explain, visualise, draw, finish.

    An identical completed run (same model hashes and attack configuration) is reused unless ``fresh``, and the
    interpretability scores it lacks are added to it; an interrupted identical run is resumed. Under torchrun
    each rank computes its share of the run (harness.pipeline.distributed).
    """
    check_options(config)
    group, config = distributed.join(config)
    sessions = store.open_database(config.db)
    located = locate(config)
    config = located.config
    timer = StageTimer()
    channel = open_channel(config, located.readable, required=located.required)
    reclassifier = None
    run_id = None
    try:
        with timer("load"):
            reply = channel.request({"op": "load", "config": config.to_json()}, budget=Budgets.of(config).load)
            metadata = validate.loaded(reply)  # the worker only reports METADATA; the parent resolves from it
            resolved, suite = resolve_config(config, metadata), resolve_suite(config)
            file_sha, weights_sha = located.hashes(metadata)
            info = get_dataset(resolved.dataset)
            x, y = load_examples(resolved.dataset, n=resolved.n_examples, data_dir=config.data_dir)
            budgets = Budgets.of(config, resolved, info.input_numel)
        with timer("contract"):
            request = {"op": "check", "data_dir": str(config.data_dir), "resolved": asdict(resolved)}
            checked = validate.checked(channel.request(request, budget=budgets.check))
            contract_flags = [*checked.flags, *masking_flags(checked.probe)]

        def make_plan() -> Plan:
            model_id = store.ensure_model(
                sessions,
                name=str(metadata["name"]),
                source=located.source,
                file_sha256=file_sha,
                weights_sha256=weights_sha,
                info=metadata,
            )
            with store.transaction(sessions) as s:
                return plan(
                    s, s.get(store.ModelRecord, model_id), resolved, suite, config, {"device": checked.device}, channel
                )

        todo = group.plan(sessions, make_plan)  # rank 0 plans; each rank gets its share
        run_id = todo.run_id
        chunk = min(resolved.batch_size, resolved.n_examples)
        todo = batching.fit(sessions, channel, config, chunk, todo, checked.device, budgets.check)
        featurevis = resolve_featurevis(config)
        channel.limit_total(budgets.total(todo.chunks, todo.suite, featurevis, info.num_classes))
        if not todo.reused:
            with timer("attack"):
                reclassifier = Reclassifier(config, located, metadata, budgets, info.num_classes, resolved.seed)
                if todo.chunks:
                    attacks = parse_attack(resolved.attack).attacks
                    schema = validate.AttackSchema(todo.chunks, info.num_classes, tuple(x.shape[1:]), attacks)
                    channel.request(
                        {"op": "attack", "chunks": todo.chunks},
                        on_message=lambda m: store_chunk(sessions, run_id, m, x, y, resolved, schema, reclassifier),
                        budget=budgets.chunk(resolved.batch_size),
                        max_line=validate.max_line_attack(resolved.batch_size, tuple(x.shape[1:])),
                    )
                    schema.finish()
                probe_chunks(sessions, run_id, channel, reclassifier, x, y, resolved, budgets, only=todo.probes)
                reclassifier.close()
        group.barrier()  # every rank's chunks are in: the explain stage reads all clean predictions
        if todo.suite is not None:
            with timer("explain"):
                explain_and_score(sessions, channel, run_id, todo.suite, x, budgets)
        if featurevis is not None and group.leads and missing_featurevis(sessions, run_id, featurevis):
            with timer("featurevis"):
                visualise_and_score(sessions, channel, run_id, featurevis, x, resolved, info, config, budgets)
        group.barrier()  # every rank's scores are in: rank 0 draws and finishes
        accuracies = None
        if group.leads:
            figures_dir = run_files_dir(config.db, run_id)
            if figures_dir is not None:
                with timer("figures"):
                    write_run_figures(sessions, run_id, figures_dir, x, y, resolved, info)
            run = finish(sessions, run_id, todo, resolved, metadata, contract_flags, timer.seconds)
            accuracies = run.clean_acc, run.robust_acc
        clean_acc, robust_acc = group.broadcast(accuracies)
        return RunSummary(
            run_id,
            str(metadata["name"]),
            resolved,
            clean_acc,
            robust_acc,
            reused=todo.reused,
            resumed=todo.resumed,
            timings=dict(timer.seconds),
        )
    except BaseException as exc:
        if run_id is not None:
            fail(sessions, run_id, exc)
        raise
    finally:
        channel.close()
        if reclassifier is not None:
            reclassifier.close()
        group.close()
