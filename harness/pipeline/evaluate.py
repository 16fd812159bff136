"""One evaluation run, from the parent's side: the only process that writes to the database.

``evaluate(config)`` is the library entry point; the CLI only builds a :class:`RunConfig`. The submission's code
runs in sandboxed workers (harness/worker/) unless ``config.trusted``: the attacking worker (load, contract check,
attack, interpretability, feature visualisation), then, after it has exited, a fresh worker whose answers are the
stored ones (harness.pipeline.fresh). Each loads a private copy of the model's declared files, hashed once by the
parent (harness.pipeline.source), and is sent the images it needs (it reads no data). The parent validates
everything that comes back (adversarial examples are re-checked against its own copy of the data) and commits
progress per attack chunk and per (method, metric) score, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness import store
from harness.attack.sanity import masking_flags
from harness.core import threads
from harness.core.config import ResolvedConfig, RunConfig
from harness.data import load_examples
from harness.pipeline import batching, distributed, validate
from harness.pipeline.attack import classify_probes, store_chunk
from harness.pipeline.budgets import Budgets
from harness.pipeline.channels import open_channel, secret_paths
from harness.pipeline.estimate import Estimate, estimate, measure_cost
from harness.pipeline.explain import explain_and_score
from harness.pipeline.featurevis import missing_featurevis, visualise_and_score
from harness.pipeline.feedback import chunk_line, header
from harness.pipeline.figures import write_run_figures
from harness.pipeline.fresh import FreshWorker, verify_chunks
from harness.pipeline.images import send_background, send_images
from harness.pipeline.lifecycle import StageTimer, aggregate_autoattack, fail, finish, open_run, record_details
from harness.pipeline.plan import Todo
from harness.pipeline.resolve import check_options, resolve
from harness.pipeline.source import ModelFiles, data_directory, locate
from harness.report.wording import autoattack_log
from harness.store.files import run_files_dir
from harness.worker.channel import OutputCap
from harness.worker.protocol import AttackRequest, check_request, load_request

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
    estimate: Estimate | None = None


def evaluate(config: RunConfig, echo: Callable[[str], None] | None = None) -> RunSummary:
    """Evaluate one submission and store the run: load, check, attack, explain, visualise, verify, draw, finish.

    The options are checked and parsed once (:func:`~harness.pipeline.resolve.check_options`) and, once the worker
    reported the submission's METADATA, resolved once into the run's plan (:func:`~harness.pipeline.resolve.resolve`),
    whose parts every stage takes. An identical completed run (same model hashes and attack configuration, rows that
    verify) is reused unless ``fresh``, and the interpretability scores it lacks are added to it; an interrupted
    identical run is resumed. Under torchrun each rank computes its share of the run (harness.pipeline.distributed).

    ``echo`` receives what the user sees as the run goes (rank 0 only; harness.pipeline.feedback): the header with
    the resolved settings, the time estimate (harness.pipeline.estimate) before the attack, AutoAttack's log per
    chunk and over the run, and each stage as it starts.
    """
    request = check_options(config)
    group, request = distributed.join(request)

    def say(line: str) -> None:
        if echo is not None and group.leads:
            echo(line)

    sessions = store.open_database(request.storage.db)
    source = locate(
        model=request.model,
        robustbench=request.robustbench,
        dataset=request.dataset,
        threat_model=request.threat_model,
        model_dir=request.model_dir,
    )
    data_dir = data_directory(request.data_dir)
    limits = request.limits
    timer = StageTimer()
    files = ModelFiles.of(source)
    secret = secret_paths(data_dir, request.storage.db)
    output = OutputCap()
    fresh = channel = None
    run_id = None
    try:
        channel = open_channel(
            limits,
            files.files(),
            forbidden=secret,
            output=output,
            run_dirs=(files.root,),
            explains=request.suite is not None,
        )
        with timer("load"):
            load_budget = Budgets.of(limits.stall_timeout, limits.timeout).load
            worker = request.worker(source, channel.model_root)
            metadata = validate.loaded(channel.request(load_request(worker), budget=load_budget))
            source.check_declared(metadata)
            plan = resolve(request, metadata, source=source, data_dir=data_dir)  # the parent resolves, not the worker
            resolved, info, budgets = plan.resolved, plan.dataset, plan.budgets
            with store.transaction(sessions) as s:
                store.claim_name(s, str(metadata["name"]), source.source, files.file_sha256, files.weights_sha256)
            x, y = load_examples(resolved.dataset, n=resolved.n_examples, data_dir=data_dir)
            send_images(channel, "test", x, y, budgets.load)
        with timer("contract"):
            checked = validate.checked(channel.request(check_request(plan.worker_run()), budget=budgets.check))
            contract_flags = [*checked.flags, *masking_flags(checked.probe)]
        for line in header(
            plan, threads=threads.decide(), device=checked.device, preset=request.preset, model=str(metadata["name"])
        ):
            say(line)

        def opened() -> Todo:
            model_id = store.ensure_model(
                sessions,
                name=str(metadata["name"]),
                source=source.source,
                file_sha256=files.file_sha256,
                weights_sha256=files.weights_sha256,
                info=metadata,
            )
            with store.transaction(sessions) as s:
                model_row = s.get(store.ModelRecord, model_id)
                return open_run(s, model_row, plan, device=checked.device, sandbox=channel.sandbox_report)

        todo = group.deal(sessions, opened)  # rank 0 opens the run; each rank gets its share
        run_id = todo.run_id
        suite = plan.suite if todo.suite is not None else None
        if suite is not None:
            send_background(channel, suite, resolved.dataset, data_dir, budgets.load)
        chunk = min(resolved.batch_size, resolved.n_examples)
        todo = batching.fit(
            sessions, channel, todo, auto=plan.auto_batch, chunk=chunk, device=checked.device, budget=budgets.check
        )
        channel.limit_total(budgets.total(todo.chunks, todo.suite, plan.featurevis, info.num_classes))
        featurevis = plan.featurevis
        if featurevis is not None and not (group.leads and missing_featurevis(sessions, run_id, featurevis)):
            featurevis = None
        predicted = None
        if todo.reused and todo.suite is None and featurevis is None:
            say(f"reusing the identical completed run {run_id} (--fresh runs again)")
        elif group.leads:
            cost = measure_cost(
                channel, x, batch_size=resolved.batch_size, num_classes=info.num_classes, budgets=budgets
            )
            workers = 0 if plan.limits.trusted else 2  # the fresh worker that re-classifies is started for the attack
            todo_plan = replace(plan, suite=todo.suite, featurevis=featurevis)
            predicted = estimate(todo_plan, cost, attack=not todo.reused and bool(todo.chunks), workers=workers)
            what = "resuming run" if todo.resumed else "adding scores to run" if todo.reused else "run"
            say(f"{what} {run_id}: estimated time {predicted.describe()}")
            say(
                f"  (model cost: {1e3 * cost.forward:.2f} ms forward, {1e3 * cost.backward:.2f} ms forward+backward "
                f"per image; {threads.decide().count} thread(s))"
            )
            record_details(sessions, run_id, "estimate", {**predicted.to_json(), "cost": vars(cost)})
        if not todo.reused:
            with timer("attack"):
                if todo.chunks:
                    say(f"attack: AutoAttack {resolved.attack} on {len(todo.chunks)} chunk(s)")
                    schema = validate.AttackSchema(
                        todo.chunks, info.num_classes, tuple(x.shape[1:]), plan.attack.attacks
                    )

                    def stored(m) -> None:
                        chunk = store_chunk(sessions, run_id, m, x, y, resolved, schema)
                        say("  " + chunk_line(chunk.start, chunk.end, chunk.accuracy_after))

                    channel.request(
                        AttackRequest(op="attack", chunks=todo.chunks),
                        on_message=stored,
                        budget=budgets.chunk(resolved.batch_size),
                        max_line=validate.max_line_attack(resolved.batch_size, tuple(x.shape[1:])),
                    )
                    schema.finish()
                classify_probes(sessions, run_id, channel, x, resolved, budgets, info.num_classes, only=todo.probes)
            if group.leads:
                say(f"  AutoAttack over the run: {autoattack_log(aggregate_autoattack(sessions, run_id))}")
        group.barrier()  # every rank's chunks are in: the explain stage reads all clean predictions
        if todo.suite is not None:
            say(f"explain: {len(todo.suite.pairs())} scores ({', '.join(todo.suite.methods)} and the controls)")
            with timer("explain"):
                explain_and_score(sessions, channel, run_id, todo.suite, x, budgets)
        if featurevis is not None:
            say("feature visualisation: representation inversion and class-specific generation")
            with timer("featurevis"):
                visualise_and_score(sessions, channel, run_id, featurevis, x, resolved, info, data_dir, budgets)
        channel.close()  # the attacking worker and everything it started are gone before the fresh worker starts
        if not todo.reused:
            with timer("verify"):
                fresh = FreshWorker.of(plan, files, after=channel, forbidden=secret, output=output)
                verify_chunks(sessions, run_id, fresh, x, y, resolved, only=todo.probes)
                fresh.close()
        group.barrier()  # every rank's scores and answers are in: rank 0 draws and finishes
        accuracies = None
        if group.leads:
            figures_dir = run_files_dir(plan.storage.db, run_id)
            if figures_dir is not None:
                say(f"figures: {figures_dir}")
                with timer("figures"):
                    write_run_figures(
                        sessions, run_id, figures_dir, x, y, resolved, info, progress=plan.limits.progress
                    )
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
            estimate=predicted,
        )
    except BaseException as exc:
        if run_id is not None:
            fail(sessions, run_id, exc)
        raise
    finally:
        if channel is not None:
            channel.close()
        if fresh is not None:
            fresh.close()
        files.remove()
        group.close()
