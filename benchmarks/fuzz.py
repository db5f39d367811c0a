"""Hostile presets: mutate the community presets and feed them through render and ingest, counting crashes.

    python benchmarks/fuzz.py --mutants 2000 --seed 0          # the table in docs/RELIABILITY.md
    python benchmarks/fuzz.py --mutants 40 --ingest 20         # a quick look

Each mutant is one community preset (presets/community, or --presets) with one to three edits
drawn from: a deleted key, a value of another JSON type, an out-of-range or huge number (1e308, a
401-digit integer, NaN), a broken wavetable (a component type outside Vital's names, a fourth table,
keyframe data cut short or not base64, empty groups), a NUL or a control character in a string, and
deep nesting. Every mutant is loaded and rendered as `synthmatch render` does (`Preset.load`, then a
fresh render), in a worker process that is replaced when it dies, with a time limit per mutant. Then a
folder of mutants (--ingest of them, with good presets among them) goes through `synthmatch ingest`.

Outcomes per mutant: rendered (it loads and plays), refused (a `SynthmatchError`: one line naming the
file), traceback (any other exception: a bug), crash (the worker died: a segfault), hang (over the time
limit). The goal is 0 tracebacks, 0 crashes, 0 hangs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import select
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402

COMMUNITY = (
    Path(__file__).resolve().parents[1] / "presets" / "community"
)  # the 59 community presets (CC BY 4.0)
OUTCOMES = ("rendered", "refused", "traceback", "crash", "hang")


# ---------------------------------------------------------------------------------------------------
# mutations: each takes (doc, rng) and edits doc in place; the text ones return the file's text
def _paths(x: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside x (keys and indices), long lists sampled."""
    out = [prefix] if prefix else []
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        idx = range(len(x)) if len(x) <= 8 else sorted(random.Random(len(x)).sample(range(len(x)), 8))
        for i in idx:
            out += _paths(x[i], prefix + (i,))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


def _pick(doc: dict, rng: random.Random, under: tuple = ()) -> tuple:
    paths = [p for p in _paths(doc) if p[: len(under)] == under and len(p) > len(under)]
    return rng.choice(paths) if paths else ()


def delete_key(doc: dict, rng: random.Random) -> None:
    path = _pick(doc, rng)
    if path:
        parent = _parent(doc, path)
        del parent[path[-1]]


SWAPS = ["text", 1, -1, 0.5, None, True, [], {}, [1, 2], {"a": 1}]


def swap_type(doc: dict, rng: random.Random) -> None:
    path = _pick(doc, rng, ("settings",) if rng.random() < 0.7 else ())
    if path:
        _parent(doc, path)[path[-1]] = copy.deepcopy(rng.choice(SWAPS))


HUGE = [1e308, -1e308, 1e30, -1e30, 1e5, -1.0, 65536, 2**63, -(2**63), float("nan"), float("inf")]


def huge_value(doc: dict, rng: random.Random) -> None:
    settings = doc.get("settings", {})
    numeric = [k for k, v in settings.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if numeric:
        settings[rng.choice(numeric)] = rng.choice(HUGE)


TYPES = ["", "Wave Source ", "Nonexistent Source", "wave source", "Audio File Source", 7, None]


def break_wavetable(doc: dict, rng: random.Random) -> None:
    tables = doc.get("settings", {}).get("wavetables")
    if not isinstance(tables, list) or not tables:
        return
    choice = rng.randrange(7)
    table = rng.choice(tables)
    comps = [c for g in table.get("groups", []) if isinstance(g, dict) for c in g.get("components", [])]
    if choice == 0 and comps:
        rng.choice(comps)["type"] = rng.choice(TYPES)
    elif choice == 1:
        tables.extend(copy.deepcopy(tables[: rng.randint(1, 3)]))  # 4 to 6 tables
    elif choice == 2 and comps:
        frames = [f for c in comps for f in c.get("keyframes", []) if "wave_data" in f]
        if frames:
            f = rng.choice(frames)
            f["wave_data"] = f["wave_data"][: rng.randrange(len(f["wave_data"]))]
    elif choice == 3 and comps:
        frames = [f for c in comps for f in c.get("keyframes", [])]
        if frames:
            rng.choice(frames)["position"] = rng.choice([-5, 300, 1e9, "x"])
    elif choice == 4:
        table["groups"] = rng.choice([[], [{}], [{"components": [{}]}], "x"])
    elif choice == 5 and comps:
        frames = [f for c in comps for f in c.get("keyframes", []) if "wave_data" in f]
        if frames:
            rng.choice(frames)["wave_data"] = "not base64 !!"
    else:
        lfos = doc.get("settings", {}).get("lfos")
        if isinstance(lfos, list) and lfos and isinstance(lfos[0], dict):
            lfos[0]["num_points"] = rng.choice([0, 10_000, -3, 2**40])


def nul_string(doc: dict, rng: random.Random) -> None:
    strings = [p for p in _paths(doc) if isinstance(_parent(doc, p)[p[-1]], str)]
    if strings:
        p = rng.choice(strings)
        parent = _parent(doc, p)
        parent[p[-1]] = (
            parent[p[-1]][:5] + rng.choice(["\x00", "\x01", "\u202e", "\udcff"]) + parent[p[-1]][5:]
        )


def deep_nesting(doc: dict, rng: random.Random) -> str:
    depth = rng.choice([1_000, 100_000])
    key = rng.choice(["settings", "preset_name"])
    text = json.dumps(doc)
    return text.replace(f'"{key}": ', f'"{key}": ' + "[" * depth, 1) + "]" * depth


def huge_integer(doc: dict, rng: random.Random) -> str:
    settings = doc.get("settings", {})
    numeric = [k for k, v in settings.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numeric:
        return json.dumps(doc)
    key = rng.choice(numeric)
    settings[key] = "__HUGE__"
    return json.dumps(doc).replace('"__HUGE__"', "1" + "0" * 400)


MUTATIONS = [delete_key, swap_type, huge_value, break_wavetable, nul_string]
TEXT_MUTATIONS = [deep_nesting, huge_integer]


def mutant(source: dict, rng: random.Random) -> tuple[str, list[str]]:
    """(the .vital file's text, the edits made)."""
    doc = copy.deepcopy(source)
    edits = []
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(MUTATIONS)
        m(doc, rng)
        edits.append(m.__name__)
    if rng.random() < 0.08:
        m = rng.choice(TEXT_MUTATIONS)
        edits.append(m.__name__)
        return m(doc, rng), edits
    return json.dumps(doc, allow_nan=True), edits


def write_mutants(folder: Path, n: int, seed: int, presets: Path = COMMUNITY) -> list[tuple[Path, list[str]]]:
    sources = sorted(presets.glob("*.vital"))
    if not sources:
        raise SystemExit(f"no .vital presets in {presets}")
    docs = [json.loads(p.read_text()) for p in sources]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randrange(len(docs))
        text, edits = mutant(docs[k], rng)
        path = folder / f"m{i:05d}_{sources[k].stem}.vital"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out.append((path, edits))
    return out


# ---------------------------------------------------------------------------------------------------
# running them
def _worker() -> None:
    """Load and render each path read from stdin, as `synthmatch render` does; one JSON line back each."""
    import traceback

    from synthmatch.errors import SynthmatchError
    from synthmatch.synth.presets import Preset
    from synthmatch.synth.render import Renderer

    with Renderer(sample_rate=44100, n_threads=1) as renderer:
        for line in sys.stdin:
            path = line.rstrip("\n")
            try:
                preset = Preset.load(path)
                renderer.render(preset, 60, 0.2, 0.4, fresh=True)
                reply = ("rendered", "")
            except SynthmatchError as exc:
                reply = ("refused" if len(str(exc).splitlines()) == 1 else "traceback", str(exc))
            except BaseException as exc:  # a bug: report it, keep going
                reply = ("traceback", "".join(traceback.format_exception(exc))[-1500:])
            print(json.dumps(reply), flush=True)


class Runner:
    """A worker process (this script with --worker) fed one mutant at a time; replaced when it dies or
    hangs."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        return self.proc

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def run(self, path: Path) -> tuple[str, str]:
        proc = self.proc or self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{path}\n")
            proc.stdin.flush()
        except BrokenPipeError:
            self._kill()
            return "crash", "worker died"
        ready, _, _ = select.select([proc.stdout], [], [], self.timeout_s)
        if not ready:
            self._kill()
            return "hang", f"over {self.timeout_s:g} s"
        line = proc.stdout.readline()
        if not line:
            code = proc.wait()
            self._kill()
            return "crash", f"worker died (exit {code})"
        outcome, message = json.loads(line)
        return outcome, message

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._kill()


def fuzz(
    n: int, seed: int, timeout_s: float = 30.0, presets: Path = COMMUNITY, progress: bool = False
) -> dict:
    """Write n mutants and run each; returns counts, examples per outcome, and the edits of each failure."""
    with tempfile.TemporaryDirectory(prefix="synthmatch-fuzz-") as tmp:
        mutants = write_mutants(Path(tmp), n, seed, presets)
        runner = Runner(timeout_s)
        counts: Counter = Counter()
        failures: list[dict] = []
        examples: dict[str, str] = {}
        by_edit: dict[str, Counter] = {}
        t0 = time.perf_counter()
        try:
            for i, (path, edits) in enumerate(mutants):
                outcome, message = runner.run(path)
                counts[outcome] += 1
                for e in set(edits):
                    by_edit.setdefault(e, Counter())[outcome] += 1
                examples.setdefault(outcome, message.replace(tmp, "<tmp>")[:300])
                if outcome in ("traceback", "crash", "hang"):
                    failures.append(
                        {"mutant": path.name, "edits": edits, "outcome": outcome, "message": message}
                    )
                if progress and (i + 1) % 100 == 0:
                    print(f"  {i + 1}/{n} {dict(counts)}", file=sys.stderr)
        finally:
            runner.close()
    return {
        "mutants": n,
        "seed": seed,
        "seconds": round(time.perf_counter() - t0, 1),
        "counts": {k: counts.get(k, 0) for k in OUTCOMES},
        "by_edit": {e: {k: c.get(k, 0) for k in OUTCOMES} for e, c in sorted(by_edit.items())},
        "examples": examples,
        "failures": failures,
    }


def fuzz_ingest(
    n: int, seed: int, synthmatch: str, timeout_s: float = 600.0, presets: Path = COMMUNITY
) -> dict:
    """`synthmatch ingest` over a folder of n mutants and 5 good presets: it must finish, write the good
    ones, and skip each bad one with a line (no traceback)."""
    with tempfile.TemporaryDirectory(prefix="synthmatch-fuzz-ingest-") as tmp:
        folder = Path(tmp) / "presets"
        folder.mkdir()
        write_mutants(folder, n, seed, presets)
        for p in sorted(presets.glob("*.vital"))[:5]:
            (folder / f"good_{p.name}").write_bytes(p.read_bytes())
        out = Path(tmp) / "out.h5"
        args = shlex.split(synthmatch) + ["ingest", str(folder), "-o", str(out), "--midi-notes", "60"]
        args += ["--duration", "0.5", "--note-duration", "0.3"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
            code, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired:
            code, err = None, "timed out"
        rows = None
        if out.exists():
            import h5py

            with h5py.File(out, "r") as f:
                rows = int(f["continuous"].shape[0]) if "continuous" in f else None
        return {
            "files": n + 5,
            "exit": code,
            "traceback": "Traceback" in err,
            "rows": rows,
            "skipped_lines": sum(1 for line in err.splitlines() if "skipped" in line.lower()),
            "seconds": round(time.perf_counter() - t0, 1),
            "stderr_tail": err[-1500:],
        }


def main() -> None:
    if sys.argv[1:] == ["--worker"]:
        return _worker()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--mutants", type=int, default=2000, help="mutants loaded and rendered (default %(default)s)"
    )
    ap.add_argument(
        "--ingest", type=int, default=200, help="mutants in the ingest folder (default %(default)s)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per mutant (default %(default)s)")
    ap.add_argument("--presets", type=Path, default=COMMUNITY, help="folder of .vital presets to mutate")
    ap.add_argument(
        "--synthmatch", default=f"{sys.executable} -m synthmatch", help="the CLI to run ingest with"
    )
    ap.add_argument("--json", type=Path, help="also write the full results here")
    a = ap.parse_args()
    result = fuzz(a.mutants, a.seed, a.timeout, a.presets, progress=True)
    rows = [[e, *c.values()] for e, c in result["by_edit"].items()]
    rows.append(["all", *result["counts"].values()])
    print_table(["edit", *OUTCOMES], rows, title=f"{a.mutants} mutants, seed {a.seed}, {result['seconds']} s")
    for f in result["failures"][:10]:
        print(f"- {f['outcome']}: {f['mutant']} ({', '.join(f['edits'])}): {f['message'][:300]}")
    if a.ingest:
        ing = fuzz_ingest(a.ingest, a.seed + 1, a.synthmatch, presets=a.presets)
        result["ingest"] = ing
        print_table(
            ["files", "exit", "traceback", "rows written", "skip lines", "seconds"],
            [
                [
                    ing["files"],
                    ing["exit"],
                    ing["traceback"],
                    ing["rows"],
                    ing["skipped_lines"],
                    ing["seconds"],
                ]
            ],
            title="synthmatch ingest over a folder of mutants and 5 good presets",
        )
        if ing["traceback"] or ing["exit"] not in (0, 1):
            print(ing["stderr_tail"])
    print(f"\n{machine_line()}")
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
