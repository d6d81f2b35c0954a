"""How parties talk: the wire codec and schema checks, large-message streams, the job-scoped
link (sequence numbers, inboxes, aborts), the ZeroMQ node (the only module that opens sockets)
and the in-process network with the same behaviour for tests and notebooks."""
