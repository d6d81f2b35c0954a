"""Job registry and the passive handler context."""
from __future__ import annotations

import pytest

from parties.jobs import JobContext, get_handler, load_handlers, register_job, registered_jobs
from parties.jobs.echo import payload_digest
from parties.jobs.registry import HANDLER_MODULES
from parties.runtime.errors import JobRejectedError
from parties.transport.inprocess import local_transports


def test_every_listed_handler_module_registers_its_jobs():
    assert {"echo", "psi.passive", "vfl.train", "vfl.predict"} <= set(load_handlers(HANDLER_MODULES))


def test_a_broken_handler_module_stops_start_up_or_is_skipped(caplog):
    with pytest.raises(ModuleNotFoundError):
        load_handlers(["parties.jobs.no_such_module"])
    names = load_handlers(["parties.jobs.no_such_module", "parties.jobs.echo"], strict=False)
    assert "echo" in names and "parties.jobs.no_such_module not loaded" in caplog.text


def test_serve_keeps_the_old_no_discover_flag():
    from parties.commands.cli import build_parser
    assert build_parser().parse_args(["serve", "--config", "x.toml", "--no-discover"]).core_only
    assert not build_parser().parse_args(["serve", "--config", "x.toml"]).core_only


def test_register_and_refuse_duplicates():
    def handler(ctx):
        return 1
    register_job("test.jobs_dummy", handler)
    assert get_handler("test.jobs_dummy") is handler and "test.jobs_dummy" in registered_jobs()
    with pytest.raises(ValueError, match="already registered"):
        register_job("test.jobs_dummy", lambda ctx: 2)
    with pytest.raises(JobRejectedError, match="no job handler"):
        get_handler("test.jobs_missing")


def test_context_allows_only_configured_aliases_and_limits():
    transport = local_transports(["bank", "insurer"])["insurer"]
    ctx = JobContext(transport, "bank", {}, {"customers": "/data/c.csv"}, max_epochs=10, recv_timeout=5)
    assert ctx.data_path("customers") == "/data/c.csv"
    for alias in ("/etc/passwd", "../customers", None):
        with pytest.raises(JobRejectedError, match="not offered"):
            ctx.data_path(alias)


def test_echo_handler_over_in_process_transport():
    from party_scenarios import echo_initiator

    from parties.transport.inprocess import InProcessNetwork
    net = InProcessNetwork(["bank", "insurer"])
    ctx = JobContext(net["insurer"], "bank", {"rounds": 2}, {}, 10, 5)
    out = net.run({"bank": echo_initiator([1, "two"]), "insurer": lambda t: get_handler("echo")(ctx)}, timeout=10)
    assert out == {"bank": [1, "two"], "insurer": {"rounds": 2, "bytes": 0}}


def test_payload_digest_rejects_plain_values():
    assert payload_digest(b"abc")[1] == 3
    with pytest.raises(JobRejectedError):
        payload_digest({"a": 1})
