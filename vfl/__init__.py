"""Learning: data alignment, models, metrics, model files and the user-facing API.

Talks to other parties only through :class:`vfl.transport.Transport`; never imports zmq.
"""
__version__ = "0.1.0"
