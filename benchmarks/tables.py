"""A SecureBoost passive's data steps on one table, read whole against read a chunk at a time:
peak memory and time, each mode in a fresh process, in one run.

The steps are what a passive does before its first histogram:
1. read and check its table;
2. put the rows in the PSI's order (a random permutation here);
3. bin the training rows (80%, 32 bins).

"whole" is ``read_table`` + ``bin_columns``; "chunks" is ``CsvTable`` + ``bin_blocks``, the
path ``[compute] stream_above_mb`` selects. The table is a synthetic CSV with text ids and
normal columns at 4 decimals, written before anything is timed. Peak memory is the process's
maximum resident set (``getrusage``), imports included. Both modes must give the same codes when
the training rows × columns fit the exact-edge budget (checked: ``same_codes``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the synthetic table (default 200,000)")
    parser.add_argument("--columns", type=int, default=100, help="feature columns (default 100)")
    parser.add_argument("--csv", help="use this CSV (an id column named id) instead of a synthetic one")


def write_table(path: str, rows: int, columns: int, *, chunk: int = 50_000) -> None:
    """Synthetic test data (a seeded generator is fine here: nothing secret)."""
    import pandas as pd
    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(columns)]
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        frame = pd.DataFrame(rng.normal(size=(n, columns)).round(4), columns=names)
        frame.insert(0, "id", [f"c{i:010d}" for i in range(start, start + n)])
        frame.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)


def measure(path: str, mode: str) -> dict:
    """One mode's data steps in this process (run in a fresh one by :func:`run`)."""
    import resource

    from vfl import registry
    from vfl.jobs.data import feature_columns, open_table, read_table
    from vfl.jobs.spec import PartySpec
    from vfl.secureboost.binning import SAMPLE_VALUES, bin_blocks, bin_columns
    family, party = registry.family("secureboost"), PartySpec("insurer", "passive", None, "t", "id", None, None)
    started = time.perf_counter()
    if mode == "whole":
        frame = read_table(path, party.name, party.id_column)
        features = feature_columns(frame, party, family)
        order = np.random.default_rng(1).permutation(len(frame))
        x = frame.iloc[order].reset_index(drop=True)[features]
        codes, _ = bin_columns(np.asarray(x.iloc[np.arange(len(x) * 4 // 5)], dtype=np.float64), 32)
    else:
        table = open_table(path, party, family)
        features = feature_columns(table, party, family)
        order = np.random.default_rng(1).permutation(len(table))
        x = table.rows(order)[features]
        codes, _ = bin_blocks(x.iloc[np.arange(len(x) * 4 // 5)], 32)
    seconds = time.perf_counter() - started
    digest = __import__("hashlib").sha256(np.ascontiguousarray(codes).tobytes()).hexdigest()
    return {"seconds": seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "codes_gb": codes.nbytes / 1e9, "codes_digest": digest,
            "exact_edges": codes.shape[0] * codes.shape[1] <= SAMPLE_VALUES}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="vfl-tables-") as tmp:
        path = args.csv
        if path is None:
            path = os.path.join(tmp, "table.csv")
            write_table(path, args.rows, args.columns)
        out = {}
        for mode in ("whole", "chunks"):
            code = f"import json, benchmarks.tables as b; print(json.dumps(b.measure({path!r}, {mode!r})))"
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"the {mode} run failed: {done.stderr[-2000:]}")
            out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        size = os.path.getsize(path)
    whole, chunks = out["whole"], out["chunks"]
    return {"csv_mb": size / 1e6, "rows": args.rows if args.csv is None else None, "columns": args.columns,
            "whole": whole, "chunks": chunks, "memory_ratio": whole["peak_rss_gb"] / chunks["peak_rss_gb"],
            "time_ratio": chunks["seconds"] / whole["seconds"],
            "same_codes": whole["codes_digest"] == chunks["codes_digest"], "exact_edges": chunks["exact_edges"]}


def render(r: dict) -> str:
    lines = [f"a SecureBoost passive's data steps on a {r['csv_mb']:,.0f} MB CSV"
             + (f" ({r['rows']:,} rows × {r['columns']} columns)" if r["rows"] else ""),
             f"  {'mode':<8}{'peak memory':>14}{'seconds':>10}{'codes':>10}"]
    for mode in ("whole", "chunks"):
        m = r[mode]
        lines.append(f"  {mode:<8}{m['peak_rss_gb']:>11.2f} GB{m['seconds']:>10.1f}{m['codes_gb']:>7.2f} GB")
    lines.append(f"  whole / chunks peak memory: {r['memory_ratio']:.2f}x; chunks / whole time: {r['time_ratio']:.2f}x")
    lines.append(f"  same codes: {r['same_codes']} (edges {'exact' if r['exact_edges'] else 'from a sample'} "
                 "in chunks)")
    return "\n".join(lines)
