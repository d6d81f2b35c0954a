"""Where a party's heavy work runs: ``[compute]`` in its config.

::

    [compute]                          # optional; default: this machine's process pool
    workers = 8                        # the local pool's size (VFL_WORKERS still caps it)
    stream_above_mb = 1024             # either way: a SecureBoost passive reads a table file larger
                                       # than this a chunk at a time (0: always); others read it whole

    [compute]                          # or: the party's own Dask cluster, behind mutual TLS
    scheduler = "tls://10.1.0.5:8786"
    ca_file = "certs/ca.pem"           # the CA that signed the scheduler's and workers' certificates
    cert_file = "certs/party.pem"      # this party's client certificate and its key
    key_file = "certs/party.key"
    private_key_on_cluster = true      # false: private-key work stays on this machine's pool
    task_timeout = 600.0               # a piece that takes longer fails the job (seconds)
    connect_timeout = 30.0

A ``tcp://`` scheduler (no TLS) needs ``insecure_plaintext = true``, as ``--insecure`` does for
the party's own port. See docs/deployment.md.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tomllib

from parties.runtime.errors import ConfigError
from parties.runtime.keys import warn_if_shared
from protocols import _workers
from vfl.errors import VFLError

_KEYS = {"workers", "stream_above_mb", "scheduler", "ca_file", "cert_file", "key_file", "private_key_on_cluster",
         "task_timeout", "connect_timeout", "insecure_plaintext"}


@dataclasses.dataclass(frozen=True)
class ComputeConfig:
    workers: int | None = None              # the local pool's size (None: VFL_WORKERS, else all cores)
    scheduler: str | None = None            # tls://host:port of the party's own Dask scheduler
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    private_key_on_cluster: bool = True
    task_timeout: float = 600.0
    connect_timeout: float = 30.0
    insecure_plaintext: bool = False
    stream_above_mb: float = 1024.0         # a table file larger than this is read a chunk at a time


def parse_compute(raw, resolve) -> ComputeConfig:
    """``[compute]`` of a party config; ``resolve`` makes paths relative to the config file."""
    if not isinstance(raw, dict) or set(raw) - _KEYS:
        unknown = sorted(set(raw) - _KEYS) if isinstance(raw, dict) else raw
        raise ConfigError(f"[compute] has unknown keys {unknown} (known: {sorted(_KEYS)})")
    workers = raw.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"[compute] workers must be a positive integer, got {workers!r}")
    for key in ("private_key_on_cluster", "insecure_plaintext"):
        if not isinstance(raw.get(key, False), bool):
            raise ConfigError(f"[compute] {key} must be true or false")
    for key in ("task_timeout", "connect_timeout"):
        value = raw.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ConfigError(f"[compute] {key} must be a positive, finite number of seconds, got {value!r}")
    stream = raw.get("stream_above_mb", 1024.0)
    if isinstance(stream, bool) or not isinstance(stream, (int, float)) or not 0 <= stream < math.inf:
        raise ConfigError(f"[compute] stream_above_mb must be a number of megabytes >= 0, got {stream!r}")
    scheduler = raw.get("scheduler")
    files = {k: raw.get(k) for k in ("ca_file", "cert_file", "key_file")}
    if scheduler is None:
        if any(raw.get(k) is not None for k in _KEYS - {"workers", "stream_above_mb"}):
            raise ConfigError("[compute] sets cluster options but no scheduler")
        return ComputeConfig(workers=workers, stream_above_mb=float(stream))
    if workers is not None:
        raise ConfigError("[compute] sets both workers (the local pool) and a scheduler: choose one")
    host, port = _address(scheduler)
    plaintext = raw.get("insecure_plaintext", False)
    if scheduler.startswith("tcp://") and not plaintext:
        raise ConfigError("[compute] scheduler is tcp:// (no TLS, no authentication): use tls://, or set "
                          "insecure_plaintext = true for a test cluster")
    if scheduler.startswith("tcp://") and host not in _LOOPBACK:
        raise ConfigError(f"[compute] insecure_plaintext is for a test cluster on this machine, not {host}")
    if scheduler.startswith("tls://"):
        for key, value in files.items():
            if not isinstance(value, str) or not value:
                raise ConfigError(f"[compute] a tls:// scheduler needs {key}")
            if not os.path.isfile(resolve(value)):
                raise ConfigError(f"[compute] {key} {resolve(value)} does not exist")
        files = {k: resolve(v) for k, v in files.items()}
    return ComputeConfig(scheduler=scheduler, private_key_on_cluster=raw.get("private_key_on_cluster", True),
                         task_timeout=float(raw.get("task_timeout", 600.0)),
                         connect_timeout=float(raw.get("connect_timeout", 30.0)), insecure_plaintext=plaintext,
                         stream_above_mb=float(stream), **files)


def read_compute_file(path) -> ComputeConfig:
    """The ``[compute]`` table of a TOML file (a party config, say), paths resolved against it."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    base = os.path.dirname(os.path.abspath(path))
    return parse_compute(raw.get("compute", {}), lambda p: os.path.normpath(os.path.join(base, os.path.expanduser(p))))


def compute_table(config: ComputeConfig) -> dict:
    """``config`` as a ``[compute]`` table again (what :func:`parse_compute` reads back to it)."""
    table = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    if config.scheduler is None:
        return {k: v for k, v in table.items() if k in ("workers", "stream_above_mb")}
    return table


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _address(scheduler) -> tuple[str, int]:
    """(host, port) of ``tls://host:port`` or ``tcp://host:port``."""
    if not isinstance(scheduler, str) or not scheduler.startswith(("tls://", "tcp://")):
        raise ConfigError(f"[compute] scheduler must be tls://host:port, got {scheduler!r}")
    host, _, port = scheduler[6:].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"[compute] scheduler must be tls://host:port with a port number, got {scheduler!r}")
    return host, int(port)


def install(config: ComputeConfig):
    """Make ``config`` where this process's parallel work runs; returns the backend (None: the
    local pool). Connects to the scheduler now, so a wrong address fails at start-up."""
    if config.scheduler is None:
        before = os.environ.get(_workers.ENV_VAR)
        _ENV_BEFORE.append(before)                      # restored by uninstall
        if config.workers is not None:                  # VFL_WORKERS, when set, still caps it
            cap = _workers.resolve_workers() if (before or "").strip() else config.workers
            os.environ[_workers.ENV_VAR] = str(min(config.workers, cap))
        _workers.set_backend(None)
        return None
    try:
        from distributed import Client
        from distributed.security import Security

        from parties.runtime.dask_backend import DaskBackend
    except ImportError:
        raise ConfigError("[compute] scheduler needs Dask: pip install 'vfl-engine[cluster]'") from None
    security = None
    if config.scheduler.startswith("tls://"):
        warn_if_shared(config.key_file, "[compute] key_file")
        security = Security(tls_ca_file=config.ca_file, tls_client_cert=config.cert_file,
                            tls_client_key=config.key_file, require_encryption=True)
    try:
        client = Client(config.scheduler, security=security, timeout=config.connect_timeout,
                        set_as_default=False)
    except Exception as exc:
        raise ConfigError(f"[compute] cannot reach the scheduler {config.scheduler}: {type(exc).__name__}: {exc}") \
            from None
    try:
        backend = DaskBackend(client, address=config.scheduler, private_keys=config.private_key_on_cluster,
                              task_timeout=config.task_timeout, call_timeout=config.connect_timeout)
    except VFLError as exc:
        client.close()
        raise ConfigError(f"[compute] {exc}") from None
    _workers.set_backend(backend)
    return backend


_ENV_BEFORE: list[str | None] = []       # VFL_WORKERS before each install of the local pool


def uninstall(backend) -> None:
    """Undo :func:`install`: the local pool again, at the size it had before."""
    _workers.set_backend(None)
    if backend is None and _ENV_BEFORE:
        before = _ENV_BEFORE.pop()
        if before is None:
            os.environ.pop(_workers.ENV_VAR, None)
        else:
            os.environ[_workers.ENV_VAR] = before
    if backend is not None:
        backend.close()


@contextlib.contextmanager
def job_scope():
    """Around one job: the secrets it ships to the party's cluster are dropped when it ends."""
    backend = _workers.installed_backend()
    if backend is None or not hasattr(backend, "release"):
        yield
        return
    from parties.runtime.dask_backend import end_job_scope, start_job_scope
    token = start_job_scope()
    try:
        yield
    finally:
        end_job_scope(token, backend)
