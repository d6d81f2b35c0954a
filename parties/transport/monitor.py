"""What a party's port sees of connections that never become a peer (ZeroMQ socket events).

A listed peer's connection completes the CURVE handshake; an unknown key is refused by the ZAP
handler (and logged there). This watch reports the rest, rate-limited: clients that speak
ZeroMQ without CURVE or with another server key (a failed handshake), and connections that close
before any handshake at all (not ZeroMQ: a port scanner, an HTTP request, garbage).
"""
from __future__ import annotations

import logging

import zmq
from zmq.utils.monitor import recv_monitor_message

from parties.runtime.logs import Throttled

log = logging.getLogger("parties.transport.node")
EVENTS = (zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
          | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
          | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_FAILED = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "no detail", zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "protocol error"}
_OUTCOMES = (zmq.EVENT_HANDSHAKE_SUCCEEDED, *_FAILED, zmq.EVENT_HANDSHAKE_FAILED_AUTH)
_MAX_PENDING = 4096


class HandshakeWatch:
    """Reads one socket's monitor events (call :meth:`read` when the monitor socket is readable).

    libzmq names a connection (its file descriptor) in accept and disconnect events but not in
    handshake events, so "closed before any handshake" is recorded only when no handshake ended
    at all between the connection's accept and its close: a lower bound, never a false alarm
    about a peer that did complete its handshake.
    """

    def __init__(self, party: str, monitor: zmq.Socket):
        self.party, self.monitor = party, monitor
        self._report = Throttled(log)
        self._outcomes = 0
        self._accepted: dict[int, int] = {}        # fd -> handshake outcomes seen when it was accepted

    def read(self) -> None:
        try:
            message = recv_monitor_message(self.monitor, zmq.NOBLOCK)
        except zmq.Again:
            return
        event, value = message["event"], message["value"]
        if event == zmq.EVENT_ACCEPTED:
            if len(self._accepted) >= _MAX_PENDING:
                self._accepted.clear()
            self._accepted[value] = self._outcomes
        elif event in _OUTCOMES:
            self._outcomes += 1
            if event in _FAILED:
                self._report(event, logging.WARNING, "%s: a connection failed its CURVE handshake (%s): a client "
                             "without CURVE or without this party's public key", self.party, _FAILED[event])
        elif event == zmq.EVENT_DISCONNECTED and self._accepted.pop(value, None) == self._outcomes:
            self._report("no handshake", logging.WARNING, "%s: a connection closed before any handshake (not a "
                         "ZeroMQ peer: a scanner, another protocol, or garbage)", self.party)
