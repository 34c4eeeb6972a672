"""What every benchmark shares: medians, the machine line, and its own section of RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\nWritten by `make bench` (each `bench/bench_*.py` replaces its own section). "
    "Medians; every peer is measured in the same run on the same machine.\n"
)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load {load:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def timed(fn: Callable[[], object], runs: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


# RESULTS.md as it was when this bench started: the previous figures, read before any section is replaced.
_BEFORE = RESULTS.read_text() if RESULTS.exists() else ""
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def previous_figure(section: str, row: str, column: int = 1) -> float | None:
    """The first number in ``column`` (1 = the first value cell) of the row of ``section`` in
    RESULTS.md whose label starts with ``row``, as the file was before this run; None if absent."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    if start not in _BEFORE:
        return None
    body = _BEFORE.split(start, 1)[1].split(end, 1)[0]
    for line in body.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > column and cells[0].startswith(row):
            found = _NUMBER.search(cells[column])
            return float(found.group()) if found else None
    return None


def with_previous(value: float, unit: str, section: str, row: str, column: int = 1) -> str:
    """``value`` with the previous RESULTS.md figure beside it (so a regression shows), also printed."""
    before = previous_figure(section, row, column)
    if before is None:
        shown = f"{value} {unit} (no previous figure)"
    else:
        change = f", {value / before:.2f}x" if before else ""
        shown = f"{value} {unit} (previous {before:g} {unit}{change})"
    print(f"{section} / {row}: {shown}", flush=True)
    return shown


def write_section(name: str, markdown: str) -> None:
    """Replace the section between this benchmark's markers, keeping the others."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    )
    RESULTS.write_text(text)
