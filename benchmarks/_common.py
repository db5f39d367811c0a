"""Helpers shared by the benchmark scripts: tables, timing, and a check that the machine is idle."""

from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager


def _proc_stat() -> tuple[float, float]:
    with open("/proc/stat") as f:
        parts = [float(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


@contextmanager
def load_monitor(result: dict):
    """Measures how busy the whole machine was compared with this process (other load skews timings)."""
    busy0, _ = _proc_stat()
    own0 = sum(os.times()[:2])
    t0 = time.perf_counter()
    yield
    wall = time.perf_counter() - t0
    busy1, _ = _proc_stat()
    own = sum(os.times()[:2]) - own0
    hz = os.sysconf("SC_CLK_TCK")
    result["machine_busy_cores"] = (busy1 - busy0) / hz / wall if wall > 0 else 0.0
    result["own_busy_cores"] = own / wall if wall > 0 else 0.0


def machine_line() -> str:
    from synthmatch.evaluation.report import cpu_model

    return f"{os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}, {platform.system()}"


def print_table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    """Print (and return) a Markdown table."""
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(f"\n{title}\n")
    lines.append("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(_fmt(v).ljust(w) for v, w in zip(r, widths)) + " |")
    text = "\n".join(lines)
    print(text)
    return text


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
