"""Errors of the party process: configuration, keys, wire format, jobs."""
from __future__ import annotations

from vfl.errors import PeerFailedError, PeerTimeoutError, ProtocolError, VFLError

__all__ = ["PartyError", "ConfigError", "KeyFileError", "WireError", "JobRejectedError",
           "PeerSilentError", "PeerFailedError", "PeerTimeoutError"]


class PartyError(VFLError):
    """Base class of errors raised by ``parties``."""


class ConfigError(PartyError, ValueError):
    """A party configuration is missing, unreadable or inconsistent; raised at start-up."""

    category = "config"


class KeyFileError(ConfigError):
    """A CURVE key file is missing, unreadable or malformed (never quotes the secret)."""


class WireError(ProtocolError):
    """Bytes from a peer do not form a valid message (malformed, oversized, truncated,
    replayed or out of order). The message is dropped and logged; the party keeps serving."""


class JobRejectedError(PartyError):
    """A passive party refused to start a job (unknown handler, unknown data alias, limits)."""

    category = "refused"


class PeerSilentError(PeerTimeoutError):
    """A peer's heartbeats stopped: it died, hung or the network dropped it."""

    def __init__(self, *, peer: str, waiting_for: str, silent_for: float):
        super().__init__(peer=peer, waiting_for=waiting_for, timeout=silent_for)
        self.args = (f"no {waiting_for} from {peer}: no heartbeat for {silent_for:.1f} s (peer gone or stalled)",)


def check_section(raw, section: str, known) -> dict:
    """``raw`` as the config table ``[section]``, with no keys but ``known``, or a ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table")
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"[{section}]: unknown keys {sorted(unknown)}")
    return raw
