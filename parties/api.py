"""The Python entry points of the process layer (what the CLI does, callable from notebooks).

``run_job_file(job, local=True)`` runs a job file like ``vfl run`` and returns its report;
``predict_job_file(job, model_dir, local=True)`` scores rows like ``vfl predict`` and returns
the job and the outcome (``outcome.result.predictions``: the DataFrame the active party sees).
"""
from parties.commands.predict import predict_job_file
from parties.commands.run import run_job_file

__all__ = ["predict_job_file", "run_job_file"]
