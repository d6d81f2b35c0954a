"""One party's ZeroMQ endpoint: the only module that opens sockets.

* One ROUTER bound on the party's listen port receives from every peer; peers connect to it
  with a DEALER. The ROUTER only receives.
* CURVE is on unless ``insecure``: the ROUTER is a CURVE server, a ZAP authenticator admits
  only the public keys listed in the config ("Ironhouse") and maps each key to its party name
  (the ZMQ ``User-Id`` of every message). A sender is known by its key, never by a name it
  claims, so one peer cannot speak or squat for another. In ``insecure`` mode (debugging only)
  the DEALER's routing id is the party name and is trusted.
* One I/O thread reads the ROUTER, checks headers, reassembles streams and routes messages to
  the inbox of their job. One heartbeat thread pings every connected peer; a receive fails
  when a peer's heartbeats stop (:class:`parties.runtime.errors.PeerSilentError`).
* Every socket has ``linger = 0`` and high-water marks; sends time out. Nothing waits forever.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time

import zmq
from zmq.auth.thread import ThreadAuthenticator

from parties.runtime.audit import AuditLog
from parties.runtime.config import PartyConfig
from parties.runtime.errors import ConfigError, PeerSilentError, WireError
from parties.runtime.logs import Throttled
from parties.transport import codec, monitor, streams
from parties.transport.link import JobInbox, LinkTransport, wire_log
from parties.transport.monitor import HandshakeWatch
from vfl.errors import PeerTimeoutError

log = logging.getLogger("parties.transport.node")
ZAP_DOMAIN = "vfl"
_MSG, _STREAM, _CHUNK, _HEARTBEAT = b"M", b"S", b"C", b"H"
_MAX_CONNECTIONS = 1024


class _Admission(ThreadAuthenticator):
    """ZAP handler: admit only configured peer keys, known afterwards by the peer's name."""

    def __init__(self, context: zmq.Context, party: str, peer_keys: dict[bytes, str]):
        super().__init__(context, log=logging.getLogger("zmq.auth"))
        self._names, self._party = peer_keys, party
        self.refused = 0
        self._report = Throttled(log)

    def callback(self, domain: str, key: bytes) -> bool:          # credentials provider
        name = self._names.get(key)
        if name is None:
            self.refused += 1
            self._report(key, logging.WARNING, "%s refused a connection with unknown CURVE key %s", self._party,
                         key.decode())
        else:
            log.info("admitted %s (CURVE key %s...)", name, key[:8].decode())
        return name is not None

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self._names[zmq.utils.z85.encode(client_public_key)]


class ZmqTransport(LinkTransport):
    """A job's view of a :class:`Node`: sends through its DEALERs, receives from its inbox.

    Each peer of a job is the peer *process* whose connection sent the job's first message from
    that peer: later messages of the job from another connection holding the same key (a second
    process, a restarted one) are refused, and the job's liveness follows that connection's
    heartbeats only, so a second process cannot hide the death of the first.
    """

    def __init__(self, node: "Node", job: str, parties, **kwargs):
        super().__init__(node.name, job, parties, **kwargs)
        self.node, self.opened_at = node, time.monotonic()
        self.connections: dict[str, bytes] = {}       # peer -> the connection this job is bound to

    def bind_connection(self, peer: str, conn: bytes) -> bool:
        """Bind ``peer`` to ``conn`` on its first message; False for any other connection later."""
        with self._lock:
            return self.connections.setdefault(peer, conn) == conn

    def _transmit(self, peer: str, header: bytes, raws: list, *, urgent: bool = False) -> None:
        self.node.transmit(peer, self.job, header, raws, urgent=urgent)

    def _check_alive(self, peer: str, waiting_for: str) -> None:
        self.node.check_alive(peer, waiting_for, since=self.opened_at, conn=self.connections.get(peer))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.node.forget_job(self.job)


class Node:
    """A party's sockets, threads and open jobs. Use as a context manager or call ``close``."""

    def __init__(self, config: PartyConfig, *, insecure: bool = False, on_job_start=None):
        self.config, self.name, self.limits = config, config.name, config.limits
        self.insecure = insecure
        self.codec_limits = codec.CodecLimits(max_message_bytes=self.limits.max_message_bytes,
                                              chunk_bytes=self.limits.chunk_bytes)
        self._keys = None if insecure else config.load_keypair()
        if not insecure and any(p.public_key is None for p in config.peers):
            raise ConfigError("every peer needs a public key unless --insecure")
        self.on_job_start = on_job_start          # callable(node, peer, header, raws, conn)
        self.audit = AuditLog(config.audit_log, self.name)
        self._ctx = zmq.Context()
        self._auth: _Admission | None = None
        self._router: zmq.Socket | None = None
        self._dealers: dict[str, tuple[zmq.Socket, threading.Lock]] = {}
        self._jobs: dict[str, ZmqTransport] = {}
        self._streams: dict[tuple, streams.Assembly] = {}
        self._last_seen: dict[tuple[str, bytes], float] = {}     # (peer, connection) -> last message
        self._identity = secrets.token_hex(6).encode()     # this process's connections, to every peer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.rejected = 0
        self.endpoint = ""
        self._watch: HandshakeWatch | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Node":
        if not self.insecure:
            keys = {p.public_key: p.name for p in self.config.peers}
            self._auth = _Admission(self._ctx, self.name, keys)
            self._auth.start()
            self._auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=self._auth)
        else:
            log.warning("%s runs WITHOUT encryption or authentication (--insecure): debugging only", self.name)
        self._router = self._ctx.socket(zmq.ROUTER)
        self._base_options(self._router)
        self._router.rcvhwm = self.limits.high_water_mark
        self._router.maxmsgsize = max(self.limits.chunk_bytes, self.codec_limits.max_header_bytes) + 4096
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self._keys is not None:
            self._router.curve_server = True
            self._router.curve_secretkey, self._router.curve_publickey = self._keys.secret, self._keys.public
            self._router.zap_domain = ZAP_DOMAIN.encode()
        self._router.bind(self.config.listen)
        self.endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        if self._keys is not None:          # connections that never get as far as a CURVE key
            self._watch = HandshakeWatch(self.name, self._router.get_monitor_socket(monitor.EVENTS))
        for target, name in ((self._io_loop, "io"), (self._heartbeat_loop, "heartbeat")):
            t = threading.Thread(target=target, name=f"{self.name}-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("%s listening on %s (%s)", self.name, self.endpoint, "insecure" if self.insecure else "CURVE")
        return self

    def _base_options(self, sock: zmq.Socket) -> None:
        sock.linger = 0
        sock.sndhwm = self.limits.high_water_mark

    def close(self) -> None:
        """Stop threads and close every socket (idempotent; pending messages are dropped)."""
        if self._stop.is_set():
            return
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2.0)
        with self._lock:
            dealers, self._dealers = list(self._dealers.values()), {}
        for sock, lock in dealers:
            with lock:
                sock.close(linger=0)
        if self._watch is not None:
            self._router.disable_monitor()
            self._watch.monitor.close(linger=0)
        if self._router is not None:
            self._router.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def __enter__(self) -> "Node":
        return self.start() if self._router is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def refused_connections(self) -> int:
        return self._auth.refused if self._auth else 0

    # -- jobs -------------------------------------------------------------------------------
    def open_job(self, job: str, parties, *, first_seq: dict[str, int] | None = None) -> ZmqTransport:
        """Register a job (its inbox receives from now on) and connect to its parties."""
        parties = list(parties)
        unknown = [p for p in parties if p != self.name and p not in {q.name for q in self.config.peers}]
        if unknown:
            raise ConfigError(f"job {job} names parties that are not configured peers: {unknown}")
        t = ZmqTransport(self, job, parties, keyring=codec.Keyring(), limits=self.codec_limits,
                         timeout=self.limits.recv_timeout, audit=self.audit,
                         share_error_details=self.config.share_error_details)
        if first_seq:
            t.inbox = JobInbox(job, t.peers, first_seq=first_seq, max_queued_bytes=t.inbox.max_queued_bytes)
        with self._lock:
            if job in self._jobs:
                raise ValueError(f"job {job} is already open")
            self._jobs[job] = t
        for p in t.peers:
            self._dealer(p)
        return t

    def forget_job(self, job: str) -> None:
        with self._lock:
            self._jobs.pop(job, None)

    def open_jobs(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    # -- sending ----------------------------------------------------------------------------
    def _dealer(self, peer: str) -> tuple[zmq.Socket, threading.Lock]:
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError(f"{self.name} is closed")
            if peer in self._dealers:
                return self._dealers[peer]
            conf = self.config.peer(peer)
            sock = self._ctx.socket(zmq.DEALER)
            self._base_options(sock)
            sock.sndtimeo = int(self.limits.send_timeout * 1000)
            if self._keys is None:          # insecure: the name is only a claim (debugging)
                sock.routing_id = self.name.encode()
            else:                           # CURVE: the ROUTER names us by our key, not by a claim;
                sock.routing_id = self._identity      # one identity per process, kept across reconnects
                sock.curve_secretkey, sock.curve_publickey = self._keys.secret, self._keys.public
                sock.curve_serverkey = conf.public_key
            sock.connect(conf.address)
            self._dealers[peer] = (sock, threading.Lock())
            return self._dealers[peer]

    def transmit(self, peer: str, job: str, header: bytes, raws: list, *, urgent: bool = False) -> None:
        """Send one encoded message; large ones in chunks. Blocks at most ``send_timeout`` per part
        (``urgent``: not at all, for aborts to a peer that may be the reason for the abort)."""
        sock, lock = self._dealer(peer)
        chunk = self.limits.chunk_bytes
        size = sum(memoryview(r).nbytes for r in raws)
        if size + len(header) <= chunk:
            self._send(peer, sock, lock, [_MSG, header, *raws], zmq.NOBLOCK if urgent else 0)
            return
        self._send(peer, sock, lock, [_STREAM, header])
        seq = codec.parse_header(header, self.codec_limits).seq
        for index, part in enumerate(streams.chunks(raws, chunk)):
            self._send(peer, sock, lock, [_CHUNK, streams.chunk_header(job, seq, index), part])

    def _send(self, peer: str, sock: zmq.Socket, lock: threading.Lock, parts: list, flags: int = 0) -> None:
        try:
            with lock:
                sock.send_multipart(parts, flags, copy=True)
        except zmq.Again:
            raise PeerTimeoutError(peer=peer, waiting_for="room in its receive queue (not reading)",
                                   timeout=self.limits.send_timeout) from None

    def _heartbeat_loop(self) -> None:
        interval = self.limits.heartbeat_interval
        while not self._stop.wait(interval):
            with self._lock:
                dealers = list(self._dealers.values())
            for sock, lock in dealers:
                if lock.acquire(timeout=interval / 2):
                    try:
                        sock.send(_HEARTBEAT, zmq.NOBLOCK)
                    except zmq.ZMQError:
                        pass                   # queue full or closing: the peer will notice
                    finally:
                        lock.release()

    def check_alive(self, peer: str, waiting_for: str, *, since: float, conn: bytes | None = None) -> None:
        """Raise if ``peer`` (its connection ``conn``, when a job is bound to one) went silent."""
        with self._lock:
            seen = [t for (p, c), t in self._last_seen.items() if p == peer and (conn is None or c == conn)]
            seen = max([since, *seen])
        silent = time.monotonic() - seen
        if silent > self.limits.peer_dead_after:
            raise PeerSilentError(peer=peer, waiting_for=waiting_for, silent_for=silent)

    # -- receiving (I/O thread) -------------------------------------------------------------
    def _io_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        if self._watch is not None:
            poller.register(self._watch.monitor, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(100))
            if self._watch is not None and self._watch.monitor in ready:
                self._watch.read()
            if self._router in ready:
                for _ in range(1024):
                    try:
                        parts = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._on_parts(parts)
            self._expire_streams()

    def _on_parts(self, parts: list) -> None:
        peer = "?"
        try:
            peer = self._authenticated_peer(parts)
            conn = parts[0].bytes
            with self._lock:
                if len(self._last_seen) > _MAX_CONNECTIONS:     # forget connections long silent
                    old = time.monotonic() - 10 * self.limits.peer_dead_after
                    self._last_seen = {k: t for k, t in self._last_seen.items() if t > old}
                self._last_seen[(peer, conn)] = time.monotonic()
            self._dispatch(peer, conn, parts[1].bytes, parts[2:])
        except WireError as exc:
            self._reject(peer, str(exc))
        except Exception as exc:             # never let one message stop the I/O thread
            self._reject(peer, f"internal error handling it ({type(exc).__name__}: {exc})")

    def _authenticated_peer(self, parts: list) -> str:
        """The sender's name: from its CURVE key (via ZAP), or its routing id when insecure."""
        if len(parts) < 2:
            raise WireError("message without a type frame")
        if self._keys is not None:
            return parts[1].get("User-Id")
        claimed = parts[0].bytes.decode("utf-8", "replace")
        if claimed not in {p.name for p in self.config.peers}:
            raise WireError(f"routing id {claimed!r} is not a configured peer")
        return claimed

    def _dispatch(self, peer: str, conn: bytes, kind: bytes, rest: list) -> None:
        if kind == _HEARTBEAT and not rest:
            return
        if kind == _MSG and rest:
            header = codec.parse_header(rest[0].buffer, self.codec_limits)
            self._route(peer, conn, header, [f.buffer for f in rest[1:]])
        elif kind == _STREAM and len(rest) == 1:
            self._start_stream(peer, conn, codec.parse_header(rest[0].buffer, self.codec_limits))
        elif kind == _CHUNK and len(rest) == 2:
            self._add_chunk(peer, conn, rest[0].bytes, rest[1].buffer)
        else:
            raise WireError(f"unknown message type {kind[:8]!r} with {len(rest)} frames")

    def _route(self, peer: str, conn: bytes, header: codec.Header, raws: list) -> None:
        with self._lock:
            job = self._jobs.get(header.job)
        if job is not None:
            if not job.bind_connection(peer, conn):
                raise WireError(f"{header.kind} for job {header.job} from another connection of {peer} than the "
                                "job's (a second process with its key?)")
            if not job.inbox.deliver(peer, header, raws):
                self.rejected += 1
        elif self.on_job_start is not None and header.seq == 0:
            self.on_job_start(self, peer, header, raws, conn)
        else:
            raise WireError(f"{header.kind} for unknown or finished job {header.job!r}")

    def _start_stream(self, peer: str, conn: bytes, header: codec.Header) -> None:
        with self._lock:
            known = header.job in self._jobs
        if not known:
            raise WireError(f"stream for unknown job {header.job!r}")
        pending = sum(a.total for (p, *_), a in self._streams.items() if p == peer)
        peer_conn = (peer, conn)
        if pending + sum(header.frames) > self.limits.max_message_bytes:
            raise WireError(f"stream would exceed the {self.limits.max_message_bytes}-byte in-flight limit")
        deadline = time.monotonic() + self.limits.recv_timeout
        self._streams[(*peer_conn, header.job, header.seq)] = streams.Assembly(header, deadline)

    def _add_chunk(self, peer: str, conn: bytes, chunk_header: bytes, data: memoryview) -> None:
        job, seq, index = streams.parse_chunk_header(chunk_header)
        key = (peer, conn, job, seq)
        assembly = self._streams.get(key)
        if assembly is None:
            raise WireError(f"chunk {index} of an unknown stream (job {job!r}, seq {seq})")
        try:
            complete = assembly.add(index, data, self.limits.chunk_bytes)
        except WireError:
            del self._streams[key]
            raise
        if complete:
            del self._streams[key]
            self._route(peer, conn, assembly.header, assembly.frames())

    def _expire_streams(self) -> None:
        now = time.monotonic()
        for key in [k for k, a in self._streams.items() if a.expired(now)]:
            del self._streams[key]
            self._reject(key[0], f"stream of job {key[2]} seq {key[3]} stalled; dropped")

    def _reject(self, peer: str, reason: str) -> None:
        self.rejected += 1
        wire_log.error("%s rejected a message from %s: %s", self.name, peer, reason)
