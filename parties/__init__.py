"""The party process: ZeroMQ transport, wire codec, CURVE keys, config, CLI, launcher, audit log.

The only package that knows sockets exist.
"""
