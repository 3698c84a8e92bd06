"""The verdicts of the benchmarks: one function per kind of target, and the rows of the table.

Every verdict is one of "yes" (the target is met), "no" (missed), "limit wrong" (the library beat
its bare limit by more than the noise, so the limit does work the library does not and bounds
nothing), "failed" (no usable measurement: missing, NaN, infinite, zero or negative) or "n/a" (no
target). A failed measurement never passes: it is counted with the misses.

- time against a comparison (`time_verdict`): ``kind="slower"``, robustmask / comparison against
  an upper bound; ``kind="faster"``, comparison / robustmask against a lower bound;
- time against a bare limit (`limit_verdict`): robustmask / limit, at least ``1 - NOISE`` (a true
  lower bound cannot be beaten by more than the noise) and at most the target, if any;
- peak memory (`memory_verdict`): the growth of the peak between two data sizes against the growth
  of the data's own bytes; a task that streams its data grows by about nothing, one that holds a
  copy grows by the data at least, so the line is drawn at ``MEMORY_SHARE`` of it;
- tracing (`tracing_verdict`): trace counts of every function in the shared compiled caches, before
  and after a new batch size; nothing may be added, not a trace and not a function.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

NOISE = 0.05  # how much faster than its bare limit the library may measure, run to run
MEMORY_SHARE = 0.5  # how much of the data's growth the peak may grow by
# The probe's noise: the most a trainer that holds nothing grew between two sizes in a trial run
# (PGD-AT, 25 to 34 MB; docs/benchmarks.md gives the command). The data must grow enough for the
# share the verdict allows to stand above it.
NOISE_MB = 10.0
MIN_DATA_GROWTH_MB = NOISE_MB / MEMORY_SHARE

MET = ("yes", "no", "limit wrong", "failed", "n/a")


def measured(*values: float | None) -> bool:
    """Whether every value is a usable measurement: a finite number above zero."""
    return all(v is not None and math.isfinite(v) and v > 0 for v in values)


def time_verdict(rm: float | None, comp: float | None, kind: str, target: float | None) -> str:
    """Robustmask's time `rm` against a comparison's `comp` (see the module docstring for `kind`)."""
    if target is None:
        return "n/a"
    if not measured(rm, comp):
        return "failed"
    assert rm is not None and comp is not None
    ratio = rm / comp if kind == "slower" else comp / rm
    return "yes" if (ratio <= target if kind == "slower" else ratio >= target) else "no"


def limit_verdict(rm: float | None, limit: float | None, target: float | None = None) -> str:
    """Robustmask's time against its bare limit: ``1 - NOISE <= rm / limit <= target``.

    Below ``1 - NOISE`` the limit is wrong, whatever the target: it was meant to be the least any
    implementation can take. Without a target only that is judged.
    """
    if not measured(rm, limit):
        return "failed"
    assert rm is not None and limit is not None
    ratio = rm / limit
    if ratio < 1.0 - NOISE:
        return "limit wrong"
    return "yes" if target is None or ratio <= target else "no"


def memory_verdict(
    peaks_mb: tuple[float | None, float | None], data_mb: tuple[float, float]
) -> tuple[str, float | None]:
    """(verdict, share): the peak's growth between two data sizes over the data's own growth.

    ``peaks_mb``: the peak memory increase of the task at the small and the large size;
    ``data_mb``: the data's bytes (in MB) at those sizes. "yes" when the share is at most
    ``MEMORY_SHARE`` (a negative growth, the noise of a task that holds nothing, passes); "failed"
    when a peak is not a measurement or the data grows by less than ``MIN_DATA_GROWTH_MB`` (the
    probe's noise would decide the verdict).
    """
    small, large = peaks_mb
    if not measured(small, large) or not data_mb[1] - data_mb[0] >= MIN_DATA_GROWTH_MB:
        return "failed", None
    assert small is not None and large is not None
    share = (large - small) / (data_mb[1] - data_mb[0])
    return ("yes" if share <= MEMORY_SHARE else "no"), share


def tracing_verdict(before: Mapping[Hashable, int], after: Mapping[Hashable, int]) -> str:
    """Traces of every function in the shared caches, before and after a new batch size.

    "yes" when the same functions hold the same counts, each traced once (one trace served every
    earlier call); "no" when a trace or a function was added, or one was traced more than once;
    "failed" when nothing was read (the caches were not found: the check would see nothing).
    """
    if not before:
        return "failed"
    if dict(after) != dict(before) or any(count != 1 for count in before.values()):
        return "no"
    return "yes"


# ---------------------------------------------------------------------------------------- rows
def row(
    task: str,
    rm: float | None,
    comp_name: str,
    comp: float | None,
    *,
    kind: str = "slower",
    target: float | None = None,
    ips: float | None = None,
    rss: str = "",
    text: str = "",
) -> dict:
    """A row of the table: robustmask's time against a comparison (``kind`` "slower" or "faster")
    or against its bare limit (``kind="limit"``, judged by `limit_verdict`)."""
    ratio = None
    if measured(rm, comp):
        assert rm is not None and comp is not None
        ratio = comp / rm if kind == "faster" else rm / comp
    if kind == "limit":
        met = limit_verdict(rm, comp, target)
        floor = f"{1.0 - NOISE:g}x"
        target_text = f">= {floor}" if target is None else f"{floor} to {target:g}x"
    else:
        met = time_verdict(rm, comp, kind, target)
        bound = "<=" if kind == "slower" else ">="
        target_text = "—" if target is None else f"{bound} {target:g}x"
    return judged(
        task,
        met,
        target_text,
        text,
        rm=rm,
        comp_name=comp_name,
        comp=comp,
        ratio=ratio,
        kind=kind,
        ips=ips,
        rss=rss,
    )


def judged(task: str, met: str, target: str, text: str, **cells: object) -> dict:
    """A row whose verdict was reached elsewhere (memory, tracing); `cells` fill the other columns."""
    assert met in MET, met
    base: dict = dict(rm=None, comp_name="—", comp=None, ratio=None, kind="", ips=None, rss="")
    return {**base, **cells, "task": task, "met": met, "target": target, "text": text}


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ratio(r: dict) -> str:
    if r["text"]:
        return r["text"]
    if r["ratio"] is None:
        return "—" if r["met"] != "failed" else "measurement failed"
    return f"{r['ratio']:.2f}x" + (" faster" if r["kind"] == "faster" else " of it")


def row_markdown(r: dict) -> str:
    ips = "—" if r["ips"] is None else f"{r['ips']:.0f}"
    cells = [
        r["task"],
        _num(r["rm"]),
        r["comp_name"],
        _num(r["comp"]),
        _ratio(r),
        r["target"],
        r["met"],
        ips,
        r["rss"] or "—",
    ]
    return "| " + " | ".join(cells) + " |"


def row_line(r: dict) -> str:
    if r["rm"] is None and r["comp"] is None and r["text"]:  # memory, tracing: no seconds to show
        return f"{r['task']}: {r['text']}{' (MB: ' + r['rss'] + ')' if r['rss'] else ''} ({r['met']})"
    return (
        f"{r['task']}: {_num(r['rm'])} s vs {r['comp_name']} {_num(r['comp'])} s -> {_ratio(r)} ({r['met']})"
    )
