"""The fast X25519 backend for own hashed ids: same bytes as libsodium, guarded, falls back.

Tests that need the real crypto_mb library skip where ipp-crypto (the ``[fast-psi]`` extra,
Linux x86_64) is not installed or the CPU lacks AVX-512 IFMA; the fallback and guard logic is tested everywhere (with a fake library).
"""
import contextlib
import ctypes
import hashlib
import itertools
import os
import re
import secrets
import shutil
import subprocess
import sys

import numpy as np
import pytest
from nacl.bindings import crypto_scalarmult

from protocols.psi import ActivePsi, FastPathError, InvalidPointError, PassivePsi, active, passive
from protocols.psi import fastmult, group, parallel

P = 2**255 - 19


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Every test loads the backend anew and leaves no state behind for the next module."""
    monkeypatch.delenv(fastmult.ENV_VAR, raising=False)
    fastmult.reload()
    yield
    fastmult.reload()


@pytest.fixture
def real_fast():
    if fastmult.backend() != "crypto_mb":
        pytest.skip(f"crypto_mb not in use here: {fastmult.status()}")
    return fastmult._load()


def _sodium(k: bytes, u: bytes) -> bytes | None:
    try:
        return crypto_scalarmult(k, u)
    except RuntimeError:
        return None


def _hashed(n: int) -> bytes:
    return group.hash_blob([f"id-{i}".encode() for i in range(n)], group.new_salt())


def _fake_library(monkeypatch, corrupt=None):
    """A stand-in for ``mbx_x25519_mb8`` (libsodium per lane); ``corrupt(call, lane, out)``
    may change a lane's output (returns bytes) or its status (returns an int)."""
    calls = itertools.count()

    def fake(op, kp, ip):
        call, status = next(calls), 0
        outs = (ctypes.c_uint64 * 8).from_address(op)
        keys = (ctypes.c_uint64 * 8).from_address(kp)
        ins = (ctypes.c_uint64 * 8).from_address(ip)
        for lane in range(8):
            k, u = ctypes.string_at(keys[lane], 32), ctypes.string_at(ins[lane], 32)
            out = _sodium(k, u) or bytes(32)
            change = corrupt(call, lane, out) if corrupt else None
            if isinstance(change, int):
                status |= change << (8 * lane)
            elif change is not None:
                out = change
            ctypes.memmove(outs[lane], out, 32)
        return status

    monkeypatch.setattr(fastmult, "_open_library", lambda: fake)
    fastmult.reload()
    assert fastmult.backend() == "crypto_mb", fastmult.status()   # the fake passes the self-test
    return fake


# --- same bytes --------------------------------------------------------------------------

def test_own_points_give_libsodium_bytes_whatever_the_backend():
    k = group.Scalar.generate().raw_bytes()
    for n in (1, 7, 8, 9, 1003):                   # short tails and a padded last call
        blob = _hashed(n)
        assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)


def test_real_library_equals_libsodium_on_random_inputs(real_fast):
    for _ in range(4):
        k, blob = secrets.token_bytes(32), secrets.token_bytes(32 * 512)
        out, status = fastmult._raw_mult(real_fast, k, blob)
        want = b"".join(_sodium(k, blob[i:i + 32]) or bytes(32) for i in range(0, len(blob), 32))
        assert status == 0 and out == want


def test_rfc7748_vectors_hold_in_libsodium():
    for k, u, want in fastmult.RFC7748:
        assert crypto_scalarmult(bytes.fromhex(k), bytes.fromhex(u)).hex() == want


def _library_image() -> bytes:
    try:
        path = fastmult._locate(*fastmult.LIBRARY)
    except Exception as exc:             # the [fast-psi] extra, which `make` installs
        pytest.skip(f"ipp-crypto not installed: {exc}")
    with open(path, "rb") as fh:
        return fh.read()


def test_installed_wheel_on_a_capable_cpu_is_used():
    _library_image()
    if not fastmult._cpu_has_flags():
        pytest.skip("no AVX-512 IFMA on this CPU")
    assert fastmult.backend() == "crypto_mb", fastmult.status()


def _libcrypto3_or_skip():
    try:
        ctypes.CDLL("libcrypto.so.3")
    except OSError:
        pytest.skip("no OpenSSL 3 libcrypto.so.3 here: crypto_mb cannot load (libsodium is used)")


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    """A fresh interpreter (the loader caches by path), without LD_LIBRARY_PATH (an Intel
    oneAPI environment could put the runtime on it)."""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, env=env)


_LOAD = """
import sys
from protocols.psi import fastmult
image = open(sys.argv[1], "rb").read()
if sys.argv[2] == "patched":
    image = fastmult.without_needed(image, fastmult.UNUSED_NEEDED)
print(fastmult._dlopen_image(image, "libcrypto_mb.so.13").mbx_x25519_mb8 is not None)
"""


def test_library_loads_without_the_intel_runtime_only_once_patched():
    """The wheel's file as is does not load, since Intel's runtime is not installed; the patched
    copy does, every symbol resolved (RTLD_NOW)."""
    image = _library_image()
    _libcrypto3_or_skip()
    assert hashlib.sha256(image).hexdigest() == fastmult.LIBRARY_SHA256
    path = fastmult._locate(*fastmult.LIBRARY)
    plain = _python(_LOAD, path, "as-is")
    assert plain.returncode != 0 and re.search("libsvml|libintlc|libimf|libirng", plain.stderr)
    patched = _python(_LOAD, path, "patched")
    assert patched.returncode == 0 and patched.stdout.strip() == "True", patched.stderr


_SHORT_WRITE = """
import resource
from protocols.psi import fastmult
fastmult._cpu_has_flags = lambda: True      # the load fails before anything would run on the CPU
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
print(fastmult.backend(), "|", fastmult.status())
"""


def test_a_short_write_of_the_image_falls_back_instead_of_crashing():
    """With a file size limit, writing the memfd stops short; mapping it would be SIGBUS."""
    _library_image()
    done = _python(_SHORT_WRITE)
    assert done.returncode == 0, done.stderr[-500:]
    backend, reason = done.stdout.strip().split(" | ", 1)
    assert backend == "libsodium" and "File too large" in reason


def test_the_image_is_loaded_once_and_its_path_never_reused():
    image = _library_image()
    _libcrypto3_or_skip()
    patched = fastmult.without_needed(image, fastmult.UNUSED_NEEDED)
    first = fastmult._dlopen_image(patched, "libcrypto_mb.so.13")
    assert fastmult._dlopen_image(patched, "libcrypto_mb.so.13") is first
    fd = fastmult._image_fds[-1]
    assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")       # still open, still ours


def test_patch_removes_exactly_the_unused_entries(tmp_path):
    image = _library_image()
    patched = fastmult.without_needed(image, fastmult.UNUSED_NEEDED)
    assert len(patched) == len(image) and patched != image
    if not shutil.which("readelf"):
        pytest.skip("no readelf here")
    needed = {}
    for name, data in (("before", image), ("after", patched)):
        (tmp_path / name).write_bytes(data)
        dump = subprocess.run(["readelf", "-d", str(tmp_path / name)], capture_output=True,
                              check=True, text=True).stdout
        needed[name] = set(re.findall(r"Shared library: \[(.+?)\]", dump))
    assert needed["before"] - needed["after"] == fastmult.UNUSED_NEEDED
    assert needed["after"] == {"libcrypto.so.3", "libm.so.6", "libdl.so.2", "libc.so.6"}


def _synthetic_elf(needed: list[str], after_null: str = "", verneed: str = "") -> tuple[bytes, int]:
    """A minimal x86-64 ET_DYN: one PT_LOAD whose addresses differ from its file offsets
    (vaddr = offset + 0x10000), a PT_DYNAMIC, a string table; returns it and the dynamic offset."""
    import struct
    names = needed + ([after_null] if after_null else []) + ([verneed] if verneed else [])
    strtab, offsets = b"\0", {}
    for n in names:
        offsets[n] = len(strtab)
        strtab += n.encode() + b"\0"
    delta, str_off, vn_off, dyn_off = 0x10000, 0x100, 0x200, 0x300
    dyn = [(1, offsets[n]) for n in needed] + [(5, str_off + delta)]
    if verneed:
        dyn += [(0x6FFFFFFE, vn_off + delta), (0x6FFFFFFF, 1)]
    dyn += [(0, 0)] + ([(1, offsets[after_null])] if after_null else []) + [(0, 0)]
    size = dyn_off + 16 * len(dyn)
    out = bytearray(size)
    out[:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", out, 16, 3, 62, 1, 0, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    struct.pack_into("<IIQQQQQQ", out, 64, 1, 4, 0, delta, delta, size, size, 0x1000)
    struct.pack_into("<IIQQQQQQ", out, 120, 2, 4, dyn_off, dyn_off + delta, dyn_off + delta,
                     16 * len(dyn), 16 * len(dyn), 8)
    out[str_off:str_off + len(strtab)] = strtab
    if verneed:
        struct.pack_into("<HHIII", out, vn_off, 1, 0, offsets[verneed], 0, 0)
    for i, (t, v) in enumerate(dyn):
        struct.pack_into("<qQ", out, dyn_off + 16 * i, t, v)
    return bytes(out), dyn_off


def _dynamic(image: bytes, dyn_off: int) -> list[tuple[int, int]]:
    import struct
    return [struct.unpack_from("<qQ", image, dyn_off + 16 * i) for i in range((len(image) - dyn_off) // 16)]


def test_patch_on_a_synthetic_library_moves_entries_up_and_pads_with_null():
    image, dyn_off = _synthetic_elf(["liba.so", "libb.so", "libc.so.6"], after_null="liba.so")
    out = fastmult.without_needed(image, frozenset({"liba.so", "libc.so.6"}))
    assert out[:dyn_off] == image[:dyn_off]                        # only the dynamic array changes
    before, after = _dynamic(image, dyn_off), _dynamic(out, dyn_off)
    assert after[0] == before[1] and after[1] == before[3]          # libb.so, then DT_STRTAB
    assert all(t == 0 for t, _ in after[2:]) and len(after) == len(before)
    with pytest.raises(ValueError, match="lacks"):                  # past DT_NULL is not an entry
        fastmult.without_needed(_synthetic_elf(["libb.so"], after_null="liba.so")[0], frozenset({"liba.so"}))
    with pytest.raises(ValueError, match="versioned against liba.so"):
        fastmult.without_needed(_synthetic_elf(["liba.so"], verneed="liba.so")[0], frozenset({"liba.so"}))
    with pytest.raises(ValueError, match="outside the file|x86-64|ELF64"):
        fastmult.without_needed(image[:dyn_off + 8], frozenset({"liba.so"}))


def test_patch_refuses_what_it_was_not_checked_on(monkeypatch):
    image = _library_image()
    with pytest.raises(ValueError, match="libnot_there"):
        fastmult.without_needed(image, frozenset({"libsvml.so", "libnot_there.so"}))
    with pytest.raises(ValueError, match="ELF"):
        fastmult.without_needed(b"#!/bin/sh\n" + bytes(100), fastmult.UNUSED_NEEDED)
    # another build: refused before anything is loaded, whatever the CPU
    monkeypatch.setattr(fastmult, "LIBRARY_SHA256", "0" * 64)
    monkeypatch.setattr(fastmult, "_cpu_has_flags", lambda: True)
    monkeypatch.setattr(fastmult, "_dlopen_image", lambda *a: pytest.fail("loaded an unchecked build"))
    fastmult.reload()
    assert fastmult.backend() == "libsodium" and "not the checked" in fastmult.status()


# --- fallback ----------------------------------------------------------------------------

def test_env_var_turns_it_off(monkeypatch):
    monkeypatch.setenv(fastmult.ENV_VAR, "0")
    monkeypatch.setattr(fastmult, "_mult_lanes", lambda *a: pytest.fail("fast path used"))
    assert fastmult.backend() == "libsodium" and "VFL_PSI_FAST=0" in fastmult.status()
    k, blob = secrets.token_bytes(32), _hashed(100)
    assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)


@pytest.mark.parametrize("library", [("no-such-distribution", "libcrypto_mb.so.13"),
                                     ("ipp-crypto", "libno_such_library.so.1")])
def test_missing_library_falls_back(monkeypatch, library):
    monkeypatch.setattr(fastmult, "LIBRARY", library)
    fastmult.reload()
    assert fastmult.backend() == "libsodium"
    assert "Error" in fastmult.status()
    k, blob = secrets.token_bytes(32), _hashed(100)
    assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)


def test_failed_self_test_falls_back(monkeypatch):
    monkeypatch.setattr(fastmult, "_open_library", lambda: (lambda op, kp, ip: 0))   # writes nothing
    fastmult.reload()
    assert fastmult.backend() == "libsodium" and "AssertionError" in fastmult.status()


def test_a_cpu_without_the_features_falls_back(monkeypatch):
    monkeypatch.setattr(fastmult, "CPU_FLAGS", ("no_such_cpu_flag",))
    fastmult.reload()
    assert fastmult.backend() == "libsodium" and "CPU" in fastmult.status()


# --- guards ------------------------------------------------------------------------------

def _edge_inputs() -> list[int]:
    """The inputs on which crypto_mb 2026.2.0 was seen to go wrong, and their neighbours."""
    us = list(range(0, 300)) + list(range(P - 300, P + 19))
    us += [(1 << i) - 1 for i in range(1, 256)] + [1 << i for i in range(255)]
    us += [u | (1 << 255) for u in range(40)] + [2**88 - 1, 2**85 - 1, 2**93 + 5, P - 5, P - 250]
    order8 = ("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",   # small order:
              "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")   # not range-guarded
    return us + [int.from_bytes(bytes.fromhex(h), "little") for h in order8]


def test_guard_covers_the_known_bad_ranges():
    pts = lambda us: np.array([list(u.to_bytes(32, "little")) for u in us], dtype=np.uint8)
    bad = [2**85 - 1, 2**88 - 1, 2**93, 2**128 - 1, P - 1, P - 2**128 + 1, P, P + 18, 2**255 + 7]
    assert fastmult.guarded(pts(bad)).all()
    ok = [2**128, 2**200 + 12345, P - 2**130, 9 * 2**180]
    assert not fastmult.guarded(pts(ok)).any()


def test_edge_inputs_get_libsodium_answers(monkeypatch):
    if fastmult.backend() != "crypto_mb":
        _fake_library(monkeypatch)                 # the routing logic is tested even so
    k = secrets.token_bytes(32)
    filler = _hashed(8)                            # keeps every batch on the fast path
    for u in _edge_inputs():
        blob = u.to_bytes(32, "little") + filler
        want = _sodium(k, blob[:32])
        if want is None:
            with pytest.raises(InvalidPointError):
                fastmult.mult_own(k, blob)
        else:
            assert fastmult.mult_own(k, blob)[:32] == want, hex(u)


def test_failed_lane_status_is_recomputed(monkeypatch):
    _fake_library(monkeypatch, corrupt=lambda call, lane, out:
                  (1 if lane == 3 else None) if call == 40 else None)   # call 40: after the self-test
    k, blob = secrets.token_bytes(32), _hashed(200)
    assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)


def test_all_zero_output_is_recomputed(monkeypatch):
    _fake_library(monkeypatch, corrupt=lambda call, lane, out:
                  bytes(32) if call >= 36 and lane == 5 else None)
    k, blob = secrets.token_bytes(32), _hashed(200)
    assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)


def test_spot_check_mismatch_raises_and_disables(monkeypatch):
    _fake_library(monkeypatch, corrupt=lambda call, lane, out:
                  bytes([out[0] ^ 1]) + out[1:] if call >= 36 else None)
    k, blob = secrets.token_bytes(32), _hashed(300)
    with pytest.raises(FastPathError):
        fastmult.mult_own(k, blob)
    assert fastmult.backend() == "libsodium" and "spot-check" in fastmult.status()
    assert fastmult.mult_own(k, blob) == group.mult_blob(k, blob)      # libsodium from now on


def test_a_mismatch_in_a_task_turns_the_fast_path_off_for_later_tasks(monkeypatch):
    """What a worker reports reaches the process handing out tasks: later tasks say
    allow_fast=False, so fresh workers (which never saw the mismatch) use libsodium too."""
    calls = []
    real = fastmult.hash_mult_own

    def task(scalar_raw, items, salt, allow_fast=True):
        calls.append(allow_fast)
        if allow_fast:
            raise FastPathError("crypto_mb X25519 disagreed with libsodium on a spot check")
        return real(scalar_raw, items, salt, allow_fast)

    monkeypatch.setattr(fastmult, "hash_mult_own", task)
    scalar, salt = group.Scalar.generate(), group.new_salt()
    items = [f"id-{i}".encode() for i in range(50)]
    assert fastmult.allowed()
    with pytest.raises(FastPathError):
        parallel.hash_and_mask(items, salt, scalar, workers=1)
    assert not fastmult.allowed() and fastmult.backend() == "libsodium" and "spot-check" in fastmult.status()
    got = parallel.hash_and_mask(items, salt, scalar, workers=1)
    assert calls == [True, False]
    assert got.tobytes() == group.hash_mult_blob(scalar.raw_bytes(), items, salt)


def test_the_error_survives_the_pipe_and_pool_tasks_accept_the_flag():
    import pickle
    err = pickle.loads(pickle.dumps(FastPathError("crypto_mb X25519 disagreed")))
    assert isinstance(err, FastPathError) and "disagreed" in str(err)
    scalar, salt = group.Scalar.generate(), group.new_salt()
    items = [f"id-{i}".encode() for i in range(3 * parallel.MIN_PIECE)]
    fastmult.tripped("a test")                            # as after a worker's mismatch
    got = parallel.hash_and_mask(items, salt, scalar, workers=2)  # real pool, allow_fast=False
    assert got.tobytes() == group.hash_mult_blob(scalar.raw_bytes(), items, salt)


def test_peer_points_never_take_the_fast_path(monkeypatch):
    monkeypatch.setattr(fastmult, "mult_own", lambda *a: pytest.fail("peer points on the fast path"))
    scalar = group.Scalar.generate()
    points = group.blob_to_points(_hashed(64))
    want = group.blob_to_points(group.mult_blob(scalar.raw_bytes(), points.tobytes()))
    assert np.array_equal(parallel.mask(points, scalar, workers=1), want)


# --- whole protocol: fast on, off and mixed give the same bytes on the wire -----------------

@contextlib.contextmanager
def _fast(on: bool):
    old = os.environ.get(fastmult.ENV_VAR)
    os.environ[fastmult.ENV_VAR] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[fastmult.ENV_VAR]
        else:
            os.environ[fastmult.ENV_VAR] = old


def _deterministic(monkeypatch):
    """Fixed salt and shuffles, so two runs can be compared byte for byte (test only)."""
    monkeypatch.setattr(group, "new_salt", lambda: b"s" * group.SALT_BYTES)
    perm = lambda n: np.random.default_rng(n).permutation(n).astype(np.int64)
    monkeypatch.setattr(active, "secure_permutation", perm)
    monkeypatch.setattr(passive, "secure_permutation", perm)


def _run(sets, fast_flags):
    """Active holds sets[0] and uses fast_flags[0]; returns (wire bytes, rows of every party)."""
    names = [f"p{i}" for i in range(1, len(sets))]
    act = ActivePsi(sets[0], names, chunk_size=256, workers=1)
    pas = {n: PassivePsi(s, workers=1) for n, s in zip(names, sets[1:])}
    wire = []
    for p in pas.values():
        p.accept_setup(act.setup())
    with _fast(fast_flags[0]):
        sent = list(act.masked_stream())
    wire += [m.points.tobytes() for m in sent]
    for (name, p), on in zip(pas.items(), fast_flags[1:]):
        with _fast(on):
            mine = list(p.masked_stream())
            answers = [p.answer(m) for m in sent]
        for msg in mine + answers:
            wire.append(msg.points.tobytes())
            act.accept(name, msg)
    outcome, alignments = act.finish()
    rows = {n: p.accept_alignment(alignments[n]).rows.tolist() for n, p in pas.items()}
    return wire, outcome.rows.tolist(), rows


@pytest.mark.parametrize("n_parties", [2, 3])
def test_protocol_bytes_do_not_depend_on_the_backend(monkeypatch, n_parties):
    _deterministic(monkeypatch)
    universe = [f"cust-{i}".encode() for i in range(3000)]
    sets = [universe[:1500], universe[700:1900], universe[::2]][:n_parties]
    runs = {}
    for flags in [(True,) * n_parties, (False,) * n_parties, (True, False, True)[:n_parties],
                  (False, True, False)[:n_parties]]:
        monkeypatch.setattr(group.Scalar, "generate", _fixed_scalars())   # the same in every run
        runs[flags] = _run(sets, flags)
    first = next(iter(runs.values()))
    assert all(r == first for r in runs.values())
    expected = set(sets[0]).intersection(*sets[1:])
    wire, active_rows, passive_rows = first
    assert {sets[0][r] for r in active_rows} == expected
    for i, name in enumerate(sorted(passive_rows), start=1):
        assert [sets[i][r] for r in passive_rows[name]] == [sets[0][r] for r in active_rows]


def _fixed_scalars():
    scalars = iter([bytes([i + 1]) * 32 for i in range(8)])
    return classmethod(lambda cls: cls(next(scalars)))
