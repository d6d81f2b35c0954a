"""``vfl keygen --name bank --out keys/``: write a party's CURVE keypair."""
from __future__ import annotations

import argparse

from parties.runtime.errors import KeyFileError
from parties.runtime.keys import load_public_key, write_keypair


def register(sub) -> None:
    p = sub.add_parser("keygen", help="create a party's CURVE keypair (public .key, secret .key_secret)")
    p.add_argument("--name", required=True, help="party name (file stem)")
    p.add_argument("--out", required=True, help="directory for the key files")
    p.add_argument("--force", action="store_true", help="overwrite existing key files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        public_path, secret_path = write_keypair(args.out, args.name, overwrite=args.force)
    except KeyFileError as exc:
        print(f"vfl keygen: {exc}")
        return 1
    print(f"public key  {public_path}  (give this file or the line below to peers)")
    print(f"secret key  {secret_path}  (mode 600; never share it)")
    print(f'public_key = "{load_public_key(public_path).decode()}"')
    return 0
