"""``vfl ping --config bank.toml --peer insurer``: exchange ciphertext vectors with a serving peer.

The smallest end-to-end check of a deployment: keys, addresses, CURVE, the job protocol and the
wire codec. Runs the built-in ``echo`` job: sends an encrypted vector, gets it back and checks it
decrypts to what was sent (the peer re-randomizes ciphertexts it sends back, as a party does with
every ciphertext it did not compute itself, so the bytes differ).
"""
from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from parties.runtime.config import load_config
from parties.runtime.errors import ConfigError
from parties.runtime.logs import setup_logging
from vfl.errors import VFLError


def register(sub) -> None:
    p = sub.add_parser("ping", help="exchange encrypted vectors with a serving peer (deployment check)")
    p.add_argument("--config", required=True, help="this party's config (TOML)")
    p.add_argument("--peer", required=True, help="name of a configured peer running `vfl serve`")
    p.add_argument("--ciphertexts", type=int, default=1000, help="length of the encrypted vector (default 1000)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--key-bits", type=int, default=2048, help="Paillier key size (default 2048)")
    p.add_argument("--insecure", action="store_true", help="DEBUGGING ONLY: no CURVE")
    p.add_argument("--log-json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parties.jobs import run_job
    from parties.jobs.echo import Echo
    from parties.transport.node import Node
    from protocols.paillier import EncryptedVector, generate_keypair

    setup_logging(json_lines=args.log_json, level="WARNING")
    try:
        config = load_config(args.config, insecure=args.insecure)
    except ConfigError as exc:
        logging.getLogger("parties.ping").error("cannot start: %s", exc)
        return 2
    public, private = generate_keypair(args.key_bits)
    values = np.linspace(-1.0, 1.0, args.ciphertexts)
    vector = EncryptedVector.encrypt(public, values)
    sent = vector.to_bytes()

    def role(transport):
        times, back = [], None
        for i in range(args.rounds):
            start = time.perf_counter()
            transport.send(args.peer, Echo(round=i, data={"key": public, "vector": vector}))
            data = transport.recv(args.peer, Echo).data
            times.append(time.perf_counter() - start)
            back = data.get("vector") if isinstance(data, dict) else None
            if not isinstance(back, EncryptedVector) or len(back) != len(values):
                raise VFLError(f"round {i}: {args.peer} did not send the vector back")
        try:                                # the last round's vector, decrypted: the keys and codec agree
            ok = np.allclose(back.decrypt(private), values, atol=1e-6)
        except Exception as exc:            # e.g. ciphertexts under another key
            raise VFLError(f"what {args.peer} sent back does not decrypt ({type(exc).__name__})") from None
        if not ok:
            raise VFLError(f"what {args.peer} sent back does not decrypt to what was sent")
        return times

    with Node(config, insecure=args.insecure) as node:
        try:
            result = run_job(node, "echo", {"rounds": args.rounds}, [args.peer], role=role)
        except VFLError as exc:
            print(f"vfl ping: {exc}")
            return 1
    stats = result.stats[args.peer]
    print(f"{config.name} -> {args.peer}: {args.rounds} round trips of {args.ciphertexts} ciphertexts "
          f"({len(sent):,} bytes), {'CURVE' if not args.insecure else 'INSECURE'}")
    print(f"  best {min(result.result) * 1e3:.1f} ms, sent {stats['bytes_sent']:,} bytes, "
          f"received {stats['bytes_received']:,} bytes; audit log {config.audit_log}")
    return 0
