"""Re-export of the message base (defined in :mod:`protocols.messages`, which has no I/O)."""
from protocols.messages import M, Message, message_class, registered_kinds

__all__ = ["M", "Message", "message_class", "registered_kinds"]
