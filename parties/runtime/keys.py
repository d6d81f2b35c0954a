"""CURVE keypairs for parties: generate, write, load and check.

Files use ZeroMQ's certificate format (readable by ``zmq.auth.load_certificate``):
``<name>.key`` holds the public key and is shared with peers; ``<name>.key_secret`` holds
both and never leaves the party. The secret file is created with mode 0600 before the secret
is written. A loaded secret is kept in :class:`CurveKeypair`, whose ``repr`` omits it.
"""
from __future__ import annotations

import datetime
import logging
import os
import stat

import zmq
import zmq.auth

from parties.runtime.errors import KeyFileError

log = logging.getLogger("parties.runtime.keys")
Z85_KEY_LEN = 40                       # 32-byte Curve25519 key in Z85


class CurveKeypair:
    """A party's CURVE keypair (Z85 bytes). The secret is never shown or logged."""

    __slots__ = ("public", "_secret")

    def __init__(self, public: bytes, secret: bytes):
        self.public, self._secret = public, secret

    @property
    def secret(self) -> bytes:
        return self._secret

    def __repr__(self) -> str:
        return f"CurveKeypair(public={self.public.decode()!r}, secret=<hidden>)"

    def __reduce__(self):
        raise TypeError("a CurveKeypair is not serializable (it holds a secret key)")


def check_z85_key(key: bytes | str, what: str) -> bytes:
    """A 40-character Z85 Curve25519 key, as bytes; :class:`KeyFileError` otherwise."""
    raw = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    try:
        ok = len(raw) == Z85_KEY_LEN and len(zmq.utils.z85.decode(raw)) == 32
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise KeyFileError(f"{what} is not a 40-character Z85 CURVE key")
    return raw


def write_keypair(out_dir: str | os.PathLike, name: str, *, overwrite: bool = False) -> tuple[str, str]:
    """Create ``<out_dir>/<name>.key`` and ``<name>.key_secret``; returns both paths.

    A directory this creates is private to the user (0700, whatever the umask). Files are
    created afresh (``overwrite`` removes the old ones first) and never through a symbolic link.
    """
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir, mode=0o700)
        os.chmod(out_dir, 0o700)            # makedirs' mode is filtered by the umask
    public, secret = zmq.curve_keypair()
    base = os.path.join(os.fspath(out_dir), name)
    public_path, secret_path = base + ".key", base + ".key_secret"
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    head = f"#   ZeroMQ CURVE {{kind}} certificate of party {name}, created {stamp} by `vfl keygen`\n"
    _write(public_path, head.format(kind="public") + _body(public, None), 0o644, overwrite)
    _write(secret_path, head.format(kind="**secret**") + "#   Never share this file.\n" + _body(public, secret),
           0o600, overwrite)
    return public_path, secret_path


def _body(public: bytes, secret: bytes | None) -> str:
    text = "metadata\ncurve\n" f'    public-key = "{public.decode()}"\n'
    return text + (f'    secret-key = "{secret.decode()}"\n' if secret else "")


def _write(path: str, text: str, mode: int, overwrite: bool) -> None:
    if overwrite and os.path.lexists(path):
        os.unlink(path)                     # a link is removed, not followed
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise KeyFileError(f"{path} exists; refusing to overwrite a key (pass overwrite/--force)") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text)


def load_keypair(secret_path: str | os.PathLike) -> CurveKeypair:
    """Load and check this party's keypair; a start-up error if anything is wrong."""
    public, secret = _load(secret_path)
    if secret is None:
        raise KeyFileError(f"{secret_path} holds no secret key (is it the public .key file?)")
    public = check_z85_key(public, f"public key in {secret_path}")
    secret = check_z85_key(secret, f"secret key in {secret_path}")
    if zmq.curve_public(secret) != public:
        raise KeyFileError(f"{secret_path}: the public key does not belong to the secret key")
    warn_if_shared(secret_path, "secret key file")
    return CurveKeypair(public, secret)


def warn_if_shared(path: str | os.PathLike, what: str) -> None:
    """Log a warning when a file holding a secret is readable by other users."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s %s is readable by other users (mode %o); chmod 600 it", what, path, stat.S_IMODE(mode))


def load_public_key(path: str | os.PathLike) -> bytes:
    """A peer's public key from its ``.key`` file."""
    public, _ = _load(path)
    return check_z85_key(public, f"public key in {path}")


def _load(path) -> tuple[bytes, bytes | None]:
    if not os.path.isfile(path):
        raise KeyFileError(f"key file {path} does not exist")
    if not os.access(path, os.R_OK):
        raise KeyFileError(f"key file {path} is not readable")
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError, IndexError) as exc:
        raise KeyFileError(f"key file {path} is malformed ({type(exc).__name__})") from None
