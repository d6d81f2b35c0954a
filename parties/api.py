"""The Python entry points of the process layer (what the CLI does, callable from notebooks).

``run_job_file(job, local=True)`` runs a job file like ``vfl run`` and returns its report.
"""
from parties.commands.run import run_job_file

__all__ = ["run_job_file"]
