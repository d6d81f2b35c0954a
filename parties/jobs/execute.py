"""Running a job as its active party: where the other parties come from, then the job itself.

Local (``--local``): every passive party is its own ``vfl serve`` process on loopback with fresh
CURVE keys, started here and stopped afterwards. Deployed (``--config``): this process is the
active party of that config and its peers are running ``vfl serve``. Either way the active side
is :mod:`vfl.jobs.active` over a ZeroMQ transport; the passives run :mod:`parties.jobs.learning`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import shutil
import threading
from typing import Any

from parties.jobs.initiator import JobResult, run_job
from parties.runtime.config import PartyConfig, load_config
from vfl.checkpoint import RunState, digest_of
from vfl.errors import VFLError
from vfl.jobs import active, runs
from vfl.jobs.manifest import Manifest
from vfl.jobs.results import PassiveResult
from vfl.jobs.spec import JobSpec

TRAIN, PREDICT = "vfl.train", "vfl.predict"      # the passives' handlers (parties.jobs.learning)

# output dir -> (its lock, still training?): train() takes the lock, finish() releases it
_HELD: dict[str, tuple[runs.RunLock, bool]] = {}
_HELD_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Parties:
    """Where a job's parties come from, and the plugins every local party loads."""

    local: bool = False
    config: str | None = None           # this (active) party's config, for deployed peers
    insecure: bool = False
    plugins: tuple[str, ...] = ()
    compute: dict | None = None         # local runs: every passive's [compute] table (default: its pool)


@dataclasses.dataclass(frozen=True)
class Outcome:
    job_id: str
    result: Any                          # what the active side returned
    passives: dict[str, Any]             # what each passive returned
    bytes_sent: dict[str, int]           # per party, as counted at the active party


def local_spec(spec: JobSpec) -> JobSpec:
    """Local runs use each passive's path; its alias defaults to its name."""
    parties = tuple(dataclasses.replace(p, alias=p.alias or p.name) if p.role == "passive" else p
                    for p in spec.parties)
    return dataclasses.replace(spec, parties=parties)


def deployed_config(spec: JobSpec, where: Parties) -> PartyConfig:
    """The active party's config, checked against the job (its name, its peers)."""
    if not where.config:
        raise VFLError("without --local, give this party's config with --config party.toml")
    cfg = load_config(where.config, insecure=where.insecure)
    if cfg.name != spec.active.name:
        raise VFLError(f"{where.config} is party {cfg.name!r} but the job's active party is {spec.active.name!r}")
    known = {p.name for p in cfg.peers}
    unknown = [p.name for p in spec.passives if p.name not in known]
    if unknown:
        raise VFLError(f"job parties {unknown} are not peers in {where.config} (peers: {sorted(known)})")
    return cfg


def train(spec: JobSpec, frame, where: Parties, *, verbose: bool = True, resume: bool = False) -> Outcome:
    """Run a training job: returns the active's :class:`~vfl.jobs.results.TrainingResult` and each
    passive's :class:`~vfl.jobs.results.PassiveResult`. Local runs copy every passive's model
    part and every party's audit log into the job's output directory.

    Every party checkpoints the run (:mod:`vfl.checkpoint`); ``resume=True`` continues the run
    recorded in the output directory (:mod:`vfl.jobs.runs`) from the checkpoints. Call
    :func:`finish` once the report is written. The output directory is locked from here until
    :func:`finish` (or until this fails): a second run or resume of it, in any process, is refused.
    """
    key = _hold(spec.output_dir, create=not resume)
    try:
        outcome = _train(spec, frame, where, verbose=verbose, resume=resume)
    except BaseException:
        _release(key)
        raise
    with _HELD_LOCK:
        if key in _HELD:
            _HELD[key] = (_HELD[key][0], False)       # trained: held until finish()
    return outcome


def _train(spec: JobSpec, frame, where: Parties, *, verbose: bool, resume: bool) -> Outcome:
    out, job_digest = pathlib.Path(spec.output_dir), spec.digest()
    record = runs.resumable(out, job_digest, local=where.local) if resume else None
    params = {**spec.passive_request(), **({"resume": record.run} if record else {})}
    with _initiator(spec, where, out, fresh=record is None) as (node, local_dir):
        peers = digest_of({p.name: (p.public_key or b"").decode() for p in node.config.peers
                           if p.name in {q.name for q in spec.passives}})
        spend = None if where.local else _label_budget(spec, node.config, record.run if record else None)

        def role(transport):
            run = record.run if record else transport.job
            if record is None:
                runs.begin(out, runs.RunRecord(run=run, job=job_digest, local=where.local))
            state = RunState(out / runs.CHECKPOINTS / spec.active.name, run=run, job=job_digest, peers=peers,
                             resume=record is not None)
            return active.train(transport, spec, frame, verbose=verbose, state=state,
                                spend=None if spend is None else lambda: spend(run))

        job = run_job(node, TRAIN, params, [p.name for p in spec.passives], role=role)
        passives = {p: PassiveResult.from_wire(p, r) for p, r in job.peer_results.items()}
        if local_dir:
            _collect(spec, local_dir, job.result.run)
    active.write_manifest(spec, job.result, {p: r.part_digest for p, r in passives.items()})
    return _outcome(spec, job, passives)


def _label_budget(spec: JobSpec, config: PartyConfig, run: str | None):
    """Check the job against the ε budget of the active's labels (``[privacy]`` of its config),
    before anything is sent; returns what charges the run when its labels are released."""
    if spec.family.data.label is None or not config.privacy.ledger:
        return None
    from parties.runtime.budgets import LabelLedger
    ledger = LabelLedger(config.privacy, config.data, config.name)
    dataset = ledger.dataset(spec.active.data)
    ledger.check(dataset, spec.privacy, run=run)
    return lambda run: ledger.charge(dataset, spec.privacy, run=run, job=spec.name)


def finish(spec: JobSpec) -> None:
    """The run's report is written: mark the run complete, remove every checkpoint of it, and
    release the output directory (:func:`train` locked it)."""
    try:
        runs.complete(spec.output_dir, runs.read(spec.output_dir))
    finally:
        _release(_key(spec.output_dir))


def _key(out_dir) -> str:
    return os.path.realpath(out_dir)


def _hold(out_dir, *, create: bool = True) -> str:
    """Lock ``out_dir`` for a run (DataError if another run holds it); returns the key the lock
    is kept under. A run this process trained there and never finished (its report was not
    written) hands its lock over."""
    key = _key(out_dir)
    with _HELD_LOCK:
        earlier = _HELD.get(key)
        if earlier is not None and not earlier[1]:
            del _HELD[key]
            earlier[0].release()
    lock = runs.lock(out_dir, create=create)
    with _HELD_LOCK:
        _HELD[key] = (lock, True)
    return key


def _release(key: str) -> None:
    with _HELD_LOCK:
        held = _HELD.pop(key, None)
    if held is not None:
        held[0].release()


def predict(spec: JobSpec, frame, model_dir, manifest: Manifest, where: Parties, *, verbose: bool = True) -> Outcome:
    """Run a prediction job with the model parts of the training run ``manifest`` records."""
    manifest.check_part(spec.active.name, os.path.join(model_dir, f"{spec.active.name}.json"))
    request = {**spec.passive_request(), "run": manifest.run, "parts": manifest.parts}
    with _initiator(spec, where, None) as (node, local_dir):
        if local_dir:                    # local passives get their saved parts
            run = [manifest.run] if manifest.run else []
            target = os.path.join(local_dir, "models", spec.active.name, spec.name, *run)
            os.makedirs(target, exist_ok=True)
            for p in spec.passives:
                shutil.copy(os.path.join(model_dir, f"{p.name}.json"), os.path.join(target, f"{p.name}.json"))
        job = run_job(node, PREDICT, request, [p.name for p in spec.passives],
                      role=lambda t: active.predict(t, spec, frame, model_dir, verbose=verbose))
    return _outcome(spec, job, job.peer_results)


@contextlib.contextmanager
def _initiator(spec: JobSpec, where: Parties, out: pathlib.Path | None, *, fresh: bool = True):
    """This party's started node, and the local cluster's directory (None when deployed).
    A local training run's cluster lives in ``<out>/parties`` (kept until the run completes, so
    that it can be resumed; ``fresh``: new keys), a prediction's in a temporary directory."""
    from parties.transport.node import Node
    if where.local:
        from parties.jobs.launcher import LocalCluster
        passives = [p.name for p in spec.passives]
        data = {p.name: {p.alias: os.path.abspath(p.data)} for p in spec.passives}
        home = None if out is None else out / runs.LOCAL_PARTIES
        if home is not None and fresh:
            shutil.rmtree(home, ignore_errors=True)
        compute = {p: where.compute for p in passives} if where.compute else None
        with LocalCluster([spec.active.name, *passives], serve=passives, data=data, plugins=where.plugins,
                          directory=None if home is None else str(home), compute=compute) as cluster:
            yield cluster.node(spec.active.name), cluster.dir
        return
    with Node(deployed_config(spec, where), insecure=where.insecure).start() as node:
        yield node, None


def _collect(spec: JobSpec, cluster_dir: str, run: str) -> None:
    """Local runs: every passive's model part and every party's audit log into the output."""
    os.makedirs(os.path.join(spec.output_dir, "audit"), exist_ok=True)
    for p in spec.parties:
        part = os.path.join(cluster_dir, "models", spec.active.name, spec.name, run, f"{p.name}.json")
        if p.role == "passive" and os.path.exists(part):
            shutil.copy(part, os.path.join(spec.output_dir, "model", f"{p.name}.json"))
        log = os.path.join(cluster_dir, f"{p.name}.audit.jsonl")
        if os.path.exists(log):
            shutil.copy(log, os.path.join(spec.output_dir, "audit", f"{p.name}.audit.jsonl"))


def _outcome(spec: JobSpec, job: JobResult, passives: dict) -> Outcome:
    sent = {spec.active.name: sum(s["bytes_sent"] for s in job.stats.values())}
    sent.update({peer: s["bytes_received"] for peer, s in job.stats.items()})
    return Outcome(job.job, job.result, passives, sent)
