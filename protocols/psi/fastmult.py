"""Batch X25519 for a party's OWN hashed ids: Intel crypto_mb (AVX-512 IFMA), guarded; else libsodium.

Why. Half of the PSI's scalar multiplications are ``H(own id)^k``. Intel's multi-buffer
``mbx_x25519_mb8`` (PyPI ``ipp-crypto``, Apache-2.0: the ``[fast-psi]`` extra, which ``make`` installs) does
eight of them per call at ≈7 µs each on this project's CPU, against ≈31 µs in libsodium, with
byte-identical results on such inputs. So the wire format does not change: a party with this
path and one without interoperate.

Why only own hashed points. crypto_mb 2026.2.0 returns WRONG results on some crafted inputs
(u near 2^85..2^93, u near p) and does not reject small-order points. An input that a peer
chose could steer it there; a keyed hash output cannot, in practice: it is uniform over the
curve, and landing in a guarded range (≈3·2^128 of 2^255 values) takes ≈2^125 hashes even for an
active party that picks the salt. Every multiplication of a point received from a peer stays
on :func:`protocols.psi.group.mult_blob` (libsodium), the vetted path.

No Intel compiler runtime. The wheel's ``libcrypto_mb.so`` lists four libraries of Intel's
compiler runtime (``intel-cmplr-lib-rt``, proprietary EULA) as NEEDED but imports no symbol from
them: its only undefined symbols are glibc's and OpenSSL 3's (plus the usual weak crt ones). So it is loaded from an in-memory
copy (``memfd``) whose dynamic section lacks those four entries, and only if the file is the
build this was checked on (:data:`LIBRARY_SHA256`). ``RTLD_NOW`` resolves every symbol at load,
so a build that did use them would fail to load, not fail later. Nothing is written to disk.

Guards, in order.
  - Loaded only on Linux x86_64 when ipp-crypto is installed, the CPU has the features
    (``mbx_is_crypto_mb_applicable`` and ``/proc/cpuinfo``: calling it without them would be
    SIGILL, which no self-test survives) and ``$VFL_PSI_FAST`` is not ``0``.
  - Load-time self-test against libsodium: RFC 7748 vectors and a few hundred random inputs.
  - Inputs with the top bit set, ``u < 2^128`` or ``u >= 2^255 - 2^129`` (covers ``u mod p``
    within 2^128 of 0 or of p) go to libsodium.
  - A non-zero lane status or an all-zero output is recomputed with libsodium (which raises
    :class:`~protocols.psi.errors.InvalidPointError` if the point really is bad).
  - About 1/64 of every batch, at indices drawn with :mod:`secrets`, is recomputed with
    libsodium; any mismatch disables this path for the process and raises
    :class:`~protocols.psi.errors.FastPathError`.
Any failure to load falls back to libsodium with one debug log line. Scalars and points are
never logged; the scalar's copy handed to C is zeroed after use.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import secrets
import struct
import threading
from importlib import metadata

import numpy as np
from nacl.bindings import crypto_scalarmult

from protocols.psi import group
from protocols.psi.errors import FastPathError

log = logging.getLogger(__name__)

ENV_VAR = "VFL_PSI_FAST"           # "0" turns the fast path off
LANES = 8                          # points per mbx_x25519_mb8 call
SPOT_EVERY = 64                    # one libsodium re-check per this many fast results
SELF_TEST_INPUTS = 256
LIBRARY = ("ipp-crypto", "libcrypto_mb.so.13")
# ipp-crypto 2026.2.0's libcrypto_mb.so.13.3: NEEDED entries checked to be unused (no undefined
# symbol but glibc's and OpenSSL's, no version requirement on them)
LIBRARY_SHA256 = "75adfaef19bd54503b1403b34b00a885fb3690235839559ca8119cc608745d0c"
UNUSED_NEEDED = frozenset({"libintlc.so.5", "libimf.so", "libsvml.so", "libirng.so"})
CPU_FLAGS = ("avx512f", "avx512dq", "avx512bw", "avx512ifma", "avx512_vbmi2", "bmi2")   # /proc/cpuinfo spelling

_W3_MAX = np.uint64((1 << 63) - 1)          # top 64-bit limb of 2^255 - 1
_W2_NEAR_P = np.uint64((1 << 64) - 2)       # w3 == _W3_MAX and w2 >= this  <=>  u >= 2^255 - 2^129

# RFC 7748 section 5.2 and 6.1: (scalar, u, X25519(scalar, u)), hex little-endian
RFC7748 = (
    ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
    ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    ("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "0900000000000000000000000000000000000000000000000000000000000000",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
    ("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
)

_lock = threading.Lock()
_state: dict = {"loaded": False, "fn": None, "reason": "not loaded yet", "tripped": False}


def _enabled_by_env() -> bool:
    return os.environ.get(ENV_VAR, "1").strip() != "0"


def _locate(dist_name: str, filename: str) -> str:
    """Path of a file an installed wheel put outside site-packages (its ``.data/data/lib``)."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"{dist_name} is not installed (the [fast-psi] extra: "
                                f"pip install 'vfl-engine[fast-psi]')") from None
    for f in dist.files or ():
        if f.name == filename:
            path = str(dist.locate_file(f))
            if os.path.exists(path):
                return os.path.realpath(path)
    raise FileNotFoundError(f"{filename} is not in the installed {dist_name}")


def _cpu_has_flags() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return all(f in flags for f in CPU_FLAGS)
    except OSError:
        pass
    return False


def without_needed(image: bytes, names: frozenset[str]) -> bytes:
    """A copy of an x86-64 ELF64 shared object without the DT_NEEDED entries in ``names``.

    The dynamic array (up to its first DT_NULL) is rewritten in place, later entries moved up
    and DT_NULL at the end, as ``patchelf --remove-needed`` does. Refused with ValueError:
    another file type or machine, a name not among the DT_NEEDED entries, a version
    requirement on one of them (symbols would be bound to it), or offsets out of the file.
    """
    data = bytearray(image)
    if data[:4] != b"\x7fELF" or len(data) < 64 or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    e_type, e_machine = struct.unpack_from("<HH", data, 0x10)
    (e_phoff,) = struct.unpack_from("<Q", data, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    if e_type != 3 or e_machine != 62 or e_phentsize != 56:       # ET_DYN, EM_X86_64
        raise ValueError("not an x86-64 shared object")

    def unpack(fmt: str, offset: int) -> tuple:
        if not 0 <= offset <= len(data) - struct.calcsize(fmt):
            raise ValueError(f"offset {offset:#x} is outside the file")
        return struct.unpack_from(fmt, data, offset)

    headers = [unpack("<IIQQQQQQ", e_phoff + 56 * i) for i in range(e_phnum)]
    loads = [h for h in headers if h[0] == 1]                    # PT_LOAD
    dynamic = [h for h in headers if h[0] == 2]                  # PT_DYNAMIC
    if len(dynamic) != 1:
        raise ValueError("no single PT_DYNAMIC segment")
    _, _, dyn_off, _, _, dyn_size, _, _ = dynamic[0]
    entries = []
    for i in range(dyn_size // 16):
        entry = unpack("<qQ", dyn_off + 16 * i)
        if entry[0] == 0:                                        # DT_NULL ends the array
            break
        entries.append(entry)

    def file_offset(vaddr: int) -> int:
        for _, _, off, va, _, filesz, _, _ in loads:
            if va <= vaddr < va + filesz:
                return vaddr - va + off
        raise ValueError(f"address {vaddr:#x} is in no loaded segment")

    def tag(t: int) -> list[int]:
        return [v for k, v in entries if k == t]

    if len(tag(5)) != 1:                                         # DT_STRTAB
        raise ValueError("no single DT_STRTAB")
    strtab = file_offset(tag(5)[0])

    def name(off: int) -> str:
        start = strtab + off
        end = data.find(0, start)
        if not 0 <= start < end:
            raise ValueError(f"string offset {off:#x} is outside the file")
        return bytes(data[start:end]).decode("ascii", "replace")

    needed = {name(v) for v in tag(1)}                           # DT_NEEDED
    if not names <= needed:
        raise ValueError(f"DT_NEEDED lacks {sorted(names - needed)}")
    if tag(0x6FFFFFFE):                                          # DT_VERNEED, DT_VERNEEDNUM
        at = file_offset(tag(0x6FFFFFFE)[0])
        for _ in range(tag(0x6FFFFFFF)[0] if tag(0x6FFFFFFF) else 0):
            _, _, vn_file, _, vn_next = unpack("<HHIII", at)
            if name(vn_file) in names:
                raise ValueError(f"symbols are versioned against {name(vn_file)}")
            at += vn_next
    kept = [(t, v) for t, v in entries if not (t == 1 and name(v) in names)]
    kept += [(0, 0)] * (dyn_size // 16 - len(kept))            # DT_NULL padding
    for i, (t, v) in enumerate(kept):
        struct.pack_into("<qQ", data, dyn_off + 16 * i, t, v)
    return bytes(data)


_images: dict[str, ctypes.CDLL] = {}    # loaded memfd images by SHA-256 (reload() keeps them)
_image_fds: list[int] = []              # kept open for the process: /proc/self/fd/N is never reused


def _dlopen_image(image: bytes, soname: str) -> ctypes.CDLL:
    """Load a shared object from memory (a sealed memfd); nothing touches the disk.

    The loader caches objects by path, so the descriptor stays open for the life of the
    process (its path then never names anything else) and an image is loaded once.
    """
    import fcntl                         # Linux only, as is this function's caller

    digest = hashlib.sha256(image).hexdigest()
    if digest in _images:
        return _images[digest]
    fd = os.memfd_create(soname, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(image)
        while view:                      # a short write (a file size limit) must not map a short file
            view = view[os.write(fd, view):]
        if os.fstat(fd).st_size != len(image):
            raise OSError(f"wrote {os.fstat(fd).st_size} of {len(image)} bytes of {soname}")
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,     # a mapped file that shrinks would be SIGBUS
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL)
        lib = ctypes.CDLL(f"/proc/self/fd/{fd}")                # ctypes asks for RTLD_NOW
    except BaseException:
        os.close(fd)
        raise
    _image_fds.append(fd)
    _images[digest] = lib
    return lib


def _open_library():
    """``mbx_x25519_mb8`` as a ctypes function, or an exception saying why not."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise OSError("crypto_mb is only used on Linux x86_64")
    if not _cpu_has_flags():
        raise OSError("the CPU lacks AVX-512 IFMA (or a companion feature)")
    with open(_locate(*LIBRARY), "rb") as fh:
        image = fh.read()
    digest = hashlib.sha256(image).hexdigest()
    if digest != LIBRARY_SHA256:
        raise OSError(f"libcrypto_mb is not the checked ipp-crypto 2026.2.0 build (sha256 {digest[:16]}…)")
    lib = _dlopen_image(without_needed(image, UNUSED_NEEDED), LIBRARY[1])
    lib.mbx_is_crypto_mb_applicable.restype = ctypes.c_int
    lib.mbx_is_crypto_mb_applicable.argtypes = [ctypes.c_uint64]
    if not lib.mbx_is_crypto_mb_applicable(0):
        raise OSError("crypto_mb says it is not applicable on this CPU")
    fn = lib.mbx_x25519_mb8
    fn.restype = ctypes.c_uint64
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return fn


def _sodium(scalar_raw: bytes, point: bytes) -> bytes | None:
    try:
        return crypto_scalarmult(scalar_raw, point)
    except RuntimeError:                 # small-order input
        return None


def _self_test(fn) -> None:
    """RFC 7748 vectors and random inputs, raw through ``fn``: must equal libsodium."""
    for k, u, want in RFC7748:
        k, u, want = bytes.fromhex(k), bytes.fromhex(u), bytes.fromhex(want)
        if _sodium(k, u) != want:
            raise AssertionError("libsodium disagrees with RFC 7748")
        out, status = _raw_mult(fn, k, u * LANES)
        if status or out[:32] != want:
            raise AssertionError("crypto_mb fails an RFC 7748 vector")
    for _ in range(SELF_TEST_INPUTS // 64):
        k, blob = secrets.token_bytes(32), secrets.token_bytes(32 * 64)
        out, status = _raw_mult(fn, k, blob)
        want = b"".join(_sodium(k, blob[i:i + 32]) or bytes(32) for i in range(0, len(blob), 32))
        if status or out != want:
            raise AssertionError("crypto_mb disagrees with libsodium on random inputs")


def _load():
    """The checked ``mbx_x25519_mb8``, or None; loaded and self-tested once per process."""
    if _state["loaded"]:
        return _state["fn"]
    with _lock:
        if not _state["loaded"]:
            try:
                fn = _open_library()
                _self_test(fn)
                _state.update(fn=fn, reason="crypto_mb loaded, self-test passed")
            except Exception as exc:     # any failure: libsodium, the vetted path
                _state.update(fn=None, reason=f"{type(exc).__name__}: {exc}")
            _state["loaded"] = True
            log.debug("PSI own-point multiplication: %s (%s)", backend(), _state["reason"])
    return _state["fn"]


def reload() -> None:
    """Forget the loaded state (tests simulate a missing library with it)."""
    with _lock:
        _state.update(loaded=False, fn=None, reason="not loaded yet", tripped=False)


def backend() -> str:
    """``"crypto_mb"`` if own hashed points use the fast path in this process, else ``"libsodium"``."""
    if not _enabled_by_env():
        return "libsodium"
    return "crypto_mb" if _load() is not None else "libsodium"


def status() -> str:
    """Why the backend is what it is (no secrets in it)."""
    if not _enabled_by_env():
        return f"{ENV_VAR}=0"
    _load()
    return _state["reason"]


def allowed() -> bool:
    """False once the fast path is off in this process: ``VFL_PSI_FAST=0``, or a spot-check
    mismatch here or in one of this process's workers (:func:`tripped`). Loads nothing."""
    return _enabled_by_env() and not _state["tripped"]


def tripped(reason: str) -> None:
    """crypto_mb disagreed with libsodium here or in a worker of this process: off here, and in
    the tasks this process hands out from now on (they carry ``allow_fast=False``)."""
    with _lock:
        _state.update(loaded=True, fn=None, reason=f"disabled after {reason}", tripped=True)


def _raw_mult(fn, scalar_raw: bytes, blob: bytes) -> tuple[bytes, int]:
    """``fn`` over a blob of a multiple of 8 points; returns the outputs and OR of the statuses."""
    out, statuses = _mult_lanes(fn, scalar_raw, np.frombuffer(blob, np.uint8).reshape(-1, 32))
    return out.tobytes(), int(np.bitwise_or.reduce(statuses)) if len(statuses) else 0


def _mult_lanes(fn, scalar_raw: bytes, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fn`` on ``(8m, 32)`` points: outputs ``(8m, 32)`` and one status per call of 8."""
    inp = np.ascontiguousarray(points, dtype=np.uint8)
    out = np.zeros_like(inp)
    m = len(inp)
    key = np.frombuffer(scalar_raw, dtype=np.uint8).copy()
    try:
        in_ptrs = (inp.ctypes.data + 32 * np.arange(m, dtype=np.uint64)).astype(np.uint64)
        out_ptrs = (out.ctypes.data + 32 * np.arange(m, dtype=np.uint64)).astype(np.uint64)
        key_ptrs = np.full(LANES, key.ctypes.data, dtype=np.uint64)   # one scalar for all lanes
        ip, op, kp = in_ptrs.ctypes.data, out_ptrs.ctypes.data, key_ptrs.ctypes.data
        statuses = np.array([fn(op + 8 * j, kp, ip + 8 * j) for j in range(0, m, LANES)],
                            dtype=np.uint64)
    finally:
        key[:] = 0                       # the C side's copy of the secret scalar
    return out, statuses


def guarded(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points that must go to libsodium (top bit, u near 0 or near p)."""
    limbs = np.ascontiguousarray(points, dtype=np.uint8).view("<u8")
    w2, w3 = limbs[:, 2], limbs[:, 3]
    top = (w3 >> np.uint64(63)) != 0
    low = (w3 == 0) & (w2 == 0)                          # u < 2^128
    high = ((w3 & _W3_MAX) == _W3_MAX) & (w2 >= _W2_NEAR_P)   # u >= 2^255 - 2^129
    return top | low | high


def mult_own(scalar_raw: bytes, blob: bytes) -> bytes:
    """X25519 of every point of ``blob``, which must be this party's own hashed ids.

    Same bytes as :func:`protocols.psi.group.mult_blob`. Never call it on peer points.
    """
    fn = _load() if _enabled_by_env() else None
    if fn is None or len(blob) < 32 * LANES:
        return group.mult_blob(scalar_raw, blob)
    points = group.blob_to_points(blob)
    slow = guarded(points)
    fast = np.flatnonzero(~slow)
    out = np.empty((len(points), 32), dtype=np.uint8)
    fast_out, redo = _fast_part(fn, scalar_raw, points[fast])
    out[fast] = fast_out
    slow[fast[redo]] = True
    checked = np.setdiff1d(np.arange(len(fast)), redo, assume_unique=True)
    _spot_check(scalar_raw, points[fast[checked]], fast_out[checked])
    todo = np.flatnonzero(slow)
    if len(todo):                        # libsodium for the guarded and failed ones
        redone = group.mult_blob(scalar_raw, points[todo].tobytes())
        out[todo] = group.blob_to_points(redone)
    return out.tobytes()


def _fast_part(fn, scalar_raw: bytes, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """crypto_mb on ``points``; also the indices whose lane failed or whose output is zero."""
    n = len(points)
    pad = (-n) % LANES
    if pad:                              # pad with a copy of a real input: discarded after
        points = np.concatenate([points, np.repeat(points[:1], pad, axis=0)])
    out, statuses = _mult_lanes(fn, scalar_raw, points)
    bad = np.repeat(statuses != 0, LANES)          # a failed call: redo all its 8 lanes
    bad |= ~out.any(axis=1)                         # all-zero output: small order or a fault
    return out[:n], np.flatnonzero(bad[:n])


def _spot_check(scalar_raw: bytes, points: np.ndarray, got: np.ndarray) -> None:
    """Recompute ≈1/64 of the results, at secret random indices, with libsodium."""
    n = len(points)
    if not n:
        return
    picks = {secrets.randbelow(n) for _ in range(max(1, n // SPOT_EVERY))}
    for i in picks:
        want = _sodium(scalar_raw, points[i].tobytes()) or bytes(32)   # None: libsodium's zero
        if want != got[i].tobytes():
            tripped("a spot-check mismatch in this process")
            log.warning("crypto_mb X25519 disagreed with libsodium; fast path disabled in this process")
            raise FastPathError("crypto_mb X25519 disagreed with libsodium on a spot check; "
                                "the fast path is now disabled in this process")


def hash_mult_own(scalar_raw: bytes, items: list[bytes], salt: bytes, allow_fast: bool = True) -> bytes:
    """Hash own ids to points and multiply them (one task for a worker); see :func:`mult_own`.
    ``allow_fast=False``: libsodium, because the process handing out the task has seen a mismatch."""
    if not allow_fast:
        return group.hash_mult_blob(scalar_raw, items, salt)
    return mult_own(scalar_raw, group.hash_blob(items, salt))
