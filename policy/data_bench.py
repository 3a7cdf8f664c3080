"""``sailrl bench data``: start-up time and peak resident memory of a large SFT set.

Generates an N-row (default 1M) text SFT set as JSONL and as parquet, then, each in a fresh
process (so peak RSS is that of the load alone), measures:

    open_cold_s   ``datasets`` converts the file into its Arrow cache and memory-maps it
    open_warm_s   the same file again (the cache is reused)
    check_s       the up-front check (column-wise for plain text tables, else row by row)
    first_batch_s the SFT stream's epoch order and its first batch of examples
    stream_first_s first row through a streaming ``datasets`` reader (no cache, no check)
    peak_rss_mib  the process's peak resident memory after all of the above
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_CHILD = """
import json, os, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from policy.data import ReadOptions, open_examples
from policy.data_check import check_examples
from policy.datasets_io import SUFFIXES, cache_dir
from sft.data import SFTStream
import datasets
path, cache = Path(sys.argv[1]), Path(sys.argv[2])
out = {"import_s": time.perf_counter() - t0}
t = time.perf_counter(); examples = open_examples(path, cache=cache)
out["open_cold_s"] = time.perf_counter() - t
t = time.perf_counter(); examples = open_examples(path, cache=cache)
out["open_warm_s"] = time.perf_counter() - t
t = time.perf_counter(); examples = check_examples(examples, ReadOptions(), ("response",))
out["check_s"] = time.perf_counter() - t
t = time.perf_counter()
stream = SFTStream(examples, "fusion", seed=0, cot_fraction=0.1)
batch, _ = next(stream.batches(64))
out["first_batch_s"] = time.perf_counter() - t
t = time.perf_counter()
streamed = datasets.load_dataset(SUFFIXES[path.suffix], data_files=str(path), split="train",
                                 streaming=True, cache_dir=str(cache_dir()))
next(iter(streamed))
out["stream_first_s"] = time.perf_counter() - t
out["rows"] = len(examples)
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out), flush=True)
# A streaming reader left mid-file can abort the interpreter's teardown (seen here with
# parquet: "terminate called without an active exception"); the numbers are out already.
os._exit(0)
"""


def add_arguments(parser) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated set")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a tmp dir)")


def generate(directory: Path, rows: int) -> dict[str, Path]:
    """An SFT set of ``rows`` rows (10% think, 90% direct) as JSONL and parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    jsonl, parquet = directory / "sft.jsonl", directory / "sft.parquet"
    writer = None
    with jsonl.open("w") as fh:
        for start in range(0, rows, 100_000):
            chunk = [_row(i) for i in range(start, min(rows, start + 100_000))]
            fh.write("".join(json.dumps(r) + "\n" for r in chunk))
            table = pa.Table.from_pylist(chunk)
            writer = writer or pq.ParquetWriter(parquet, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()
    return {"jsonl": jsonl, "parquet": parquet}


def _row(i: int) -> dict[str, Any]:
    think = i % 10 == 0
    response = f"<think>\n{i} plus {i} is {2 * i}.\n</think>\n\n\\boxed{{{2 * i}}}" if think else (
        f"\\boxed{{{2 * i}}}")  # fmt: skip
    return {"prompt": f"What is {i} + {i}? Show the answer.", "answer": str(2 * i),
            "response": response, "mode": "think" if think else "direct"}  # fmt: skip


def run(args) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sailrl-bench-data-") as tmp:
        root = Path(args.dir) if args.dir else Path(tmp)
        t = time.perf_counter()
        files = generate(root, args.rows)
        result: dict[str, Any] = {"rows": args.rows, "generate_s": time.perf_counter() - t}
        for kind, path in files.items():
            result[f"{kind}_mib"] = path.stat().st_size / 2**20
            cache = root / f"cache-{kind}"
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(cache)],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(f"bench child failed on {path}: {proc.stderr[-2000:]}")
            result[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
