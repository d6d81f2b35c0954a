"""Jobs: the handlers a party serves, the server that runs them, how an initiator starts one,
and the local launcher that starts every party of a job on this machine.

The names most callers need are re-exported here.
"""
from parties.jobs.initiator import JobResult, run_job, start_job
from parties.jobs.registry import JobContext, get_handler, load_handlers, register_job, registered_jobs

__all__ = ["JobContext", "JobResult", "get_handler", "load_handlers", "register_job", "registered_jobs",
           "run_job", "start_job"]
