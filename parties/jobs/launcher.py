"""Start N parties on loopback as separate OS processes, and always clean them up.

``LocalCluster`` makes a temporary directory with fresh CURVE keys and one config per party
(free loopback ports, every other party as a peer), starts ``vfl serve`` for the passive parties
and lets the initiator run in this process::

    with LocalCluster(["bank", "insurer"]) as cluster:          # insurer is served
        with cluster.node("bank") as bank:
            result = run_job(bank, "echo", {"rounds": 3}, ["insurer"], role=my_active_role)

Children are killed (whole process group) on ``close``/exit from the ``with`` block, at
interpreter exit, and — on Linux — by the kernel if this process dies (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from parties.runtime.config import PartyConfig, load_config
from parties.runtime.keys import load_public_key, write_keypair
from parties.transport.node import Node


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:           # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _toml(value) -> str:
    """A TOML literal of a string, number, boolean, or a table of them (inline)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


class LocalCluster:
    """Parties on 127.0.0.1 with fresh keys; ``serve`` lists those started as processes."""

    def __init__(self, parties: list[str], *, serve: list[str] | None = None, insecure: bool = False,
                 limits: dict | None = None, data: dict[str, dict[str, str]] | None = None,
                 jobs_modules: tuple[str, ...] = (), start_timeout: float = 30.0, log_json: bool = False,
                 core_only: bool = False, plugins: tuple[str, ...] = (), share_error_details: bool = True,
                 psi: dict | None = None, directory: str | None = None, compute: dict | None = None,
                 sections: dict | None = None):
        if len(set(parties)) != len(parties) or len(parties) < 2:
            raise ValueError("a cluster needs at least two distinct party names")
        self.parties, self.insecure = list(parties), insecure
        self.served = list(parties[1:] if serve is None else serve)
        self.limits, self.data = dict(limits or {}), dict(data or {})
        self.jobs_modules, self.start_timeout, self.log_json = tuple(jobs_modules), start_timeout, log_json
        self.core_only = core_only       # True: only the echo job and `jobs_modules` handlers (less start-up work)
        self.plugins = tuple(plugins)    # model-family modules every party's config names
        self.share_error_details = share_error_details   # False: behave as separate organisations
        self.psi = dict(psi or {})          # every party's [psi] terms
        self.compute = dict(compute or {})  # party -> its [compute] table (e.g. a test's Dask cluster)
        self.sections = dict(sections or {})   # party -> {section: table}: more of its config ([predictions], ...)
        # ``directory``: a lasting home (kept on close; its keys reused on the next start), so
        # that a run the cluster served can be resumed by a new cluster; default: a temporary one
        self.home = os.path.abspath(directory) if directory else directory   # the parties run in it (cwd)
        self.dir: str | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.endpoints: dict[str, str] = {}
        self._nodes: list[Node] = []

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "LocalCluster":
        if self.home is not None:
            os.makedirs(self.home, mode=0o700, exist_ok=True)
            os.chmod(self.home, 0o700)
            self.dir = self.home
        else:
            self.dir = tempfile.mkdtemp(prefix="vfl-cluster-")
        atexit.register(self.close)
        try:
            self._write_configs()
            for name in self.served:
                self._spawn(name)
            for name in self.served:
                self._wait_ready(name)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close in-process nodes, stop every child (SIGTERM, then SIGKILL), remove the directory."""
        for node in self._nodes:
            node.close()
        self._nodes.clear()
        for name in list(self.processes):
            self.kill(name, sig=signal.SIGTERM, wait=3.0)
        if self.dir and os.path.isdir(self.dir) and self.home is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        atexit.unregister(self.close)

    def kill(self, name: str, *, sig: int = signal.SIGKILL, wait: float = 5.0) -> None:
        """Stop a served party's process group; escalates to SIGKILL if it does not exit."""
        proc = self.processes.pop(name, None)
        if proc is None:
            return
        for s in (sig, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, s)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout:
            proc.stdout.close()

    def restart(self, name: str) -> None:
        """Start a served party again (after :meth:`kill`), with its config, keys and files."""
        self.kill(name)
        self._spawn(name)
        self._wait_ready(name)

    # -- parties ----------------------------------------------------------------------------
    def config_path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.toml")

    def config(self, name: str) -> PartyConfig:
        return load_config(self.config_path(name), insecure=self.insecure)

    def node(self, name: str) -> Node:
        """A started node for an unserved party, in this process (closed with the cluster)."""
        node = Node(self.config(name), insecure=self.insecure).start()
        self._nodes.append(node)
        return node

    def log_path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.log")

    def log_text(self, name: str) -> str:
        with open(self.log_path(name), encoding="utf-8", errors="replace") as f:
            return f.read()

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    # -- internals --------------------------------------------------------------------------
    def _write_configs(self) -> None:
        keydir = os.path.join(self.dir, "keys")
        for name in self.parties:
            if not os.path.exists(os.path.join(keydir, f"{name}.key_secret")):
                write_keypair(keydir, name)
        ports = {name: free_port() for name in self.parties}
        for name in self.parties:
            lines = [f'name = "{name}"', f'listen = "tcp://127.0.0.1:{ports[name]}"',
                     f'audit_log = "{name}.audit.jsonl"']
            if not self.insecure:
                lines.append(f'secret_key = "keys/{name}.key_secret"')
            if self.plugins:
                lines.append("plugins = [" + ", ".join(f'"{m}"' for m in self.plugins) + "]")
            if self.share_error_details:      # every party here is the same user's
                lines.append("share_error_details = true")
            lines += ["", "[limits]"] + [f"{k} = {v!r}" for k, v in self.limits.items()]
            lines += ["", "[psi]"] + [f"{k} = {_toml(v)}" for k, v in self.psi.items()]
            lines += ["", "[compute]"] + [f"{k} = {_toml(v)}" for k, v in self.compute.get(name, {}).items()]
            for section, table in self.sections.get(name, {}).items():
                lines += ["", f"[{section}]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
            lines += ["", "[data]"] + [f'{k} = "{v}"' for k, v in self.data.get(name, {}).items()]
            for peer in self.parties:
                if peer != name:
                    key = load_public_key(os.path.join(keydir, f"{peer}.key")).decode()
                    lines += ["", "[[peers]]", f'name = "{peer}"', f'address = "tcp://127.0.0.1:{ports[peer]}"',
                              f'public_key = "{key}"']
            with open(self.config_path(name), "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")

    def _spawn(self, name: str) -> None:
        cmd = [sys.executable, "-m", "parties.commands.serve", "--config", self.config_path(name)]
        cmd += ["--insecure"] * self.insecure + ["--log-json"] * self.log_json + ["--core-only"] * self.core_only
        for module in self.jobs_modules:
            cmd += ["--jobs-module", module]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True, preexec_fn=_die_with_parent, cwd=self.dir)

    def _wait_ready(self, name: str) -> None:
        proc, deadline = self.processes[name], time.monotonic() + self.start_timeout
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if sel.select(timeout=0.2):
                    line = proc.stdout.readline().decode(errors="replace")
                    if line.startswith("READY "):
                        self.endpoints[name] = line.split()[-1]
                        return
                    if not line and proc.poll() is not None:
                        break
                elif proc.poll() is not None:
                    break
        finally:
            sel.close()
        tail = self.log_text(name)[-2000:]
        raise RuntimeError(f"party {name} did not start within {self.start_timeout:g} s "
                           f"(exit code {proc.poll()}); log:\n{tail}")
