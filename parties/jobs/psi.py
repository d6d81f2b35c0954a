"""PSI as a job: the passive role that ``vfl serve`` runs when an active party asks.

Registered as ``psi.passive`` (``vfl serve`` loads it: :data:`parties.jobs.registry.HANDLER_MODULES`).
The initiator runs :func:`vfl.psi.align_active` over the job's transport::

    run_job(node, "psi.passive", {"data": "customers", "id_column": "id"}, ["insurer"],
            role=lambda t: align_active(t, df, "id"))

params: ``data`` (an alias from this party's ``[data]``: a CSV file), ``id_column``, and
optionally ``output`` (another alias: the aligned rows are written there, as CSV, on this
party's own disk). The id column is read as text, so ``"007"`` stays ``"007"``. A file larger
than ``[compute] stream_above_mb`` is never held: only its ids are read for the PSI, and the
aligned rows are copied to the output as the file's own text
(:meth:`vfl.jobs.data.CsvTable.write_rows`). Options such as ``private`` are the active party's
and reach this side in ``PsiSetup``. The result sent back is the report
(sizes and seconds), never ids or rows.
"""
from __future__ import annotations

import logging

from parties.jobs.registry import JobContext, register_job
from parties.runtime.errors import JobRejectedError
from vfl.jobs.data import CsvTable, read_table
from vfl.psi import align_passive

log = logging.getLogger("parties.jobs.psi")


@register_job("psi.passive")
def psi_passive(ctx: JobContext) -> dict:
    id_column = ctx.params.get("id_column")
    if not isinstance(id_column, str) or not id_column:
        raise JobRejectedError(f"psi.passive needs a string id_column, got {id_column!r}")
    path, me = ctx.data_path(ctx.params.get("data")), ctx.transport.party
    output = ctx.params.get("output")
    target = ctx.data_path(output) if output is not None else None     # refuse before any work
    if ctx.reads_in_chunks(path):                                       # too big to hold: its ids only
        table = CsvTable(path, me, id_column, [], allow_nan=True)
        log.info("%s: reads %s a chunk at a time for a PSI: %d ids", me, path, len(table))
        result = align_passive(ctx.transport, table.ids, id_column, active=ctx.initiator, progress=False,
                               policy=ctx.psi_policy())
        if target is not None:
            table.write_rows(result.rows, target)
        return result.report.as_dict()
    df = read_table(path, me, id_column)
    result = align_passive(ctx.transport, df, id_column, active=ctx.initiator, progress=False,
                           policy=ctx.psi_policy())
    if target is not None:
        result.frame.to_csv(target, index=False)
    return result.report.as_dict()
