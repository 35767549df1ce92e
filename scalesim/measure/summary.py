"""End-of-campaign summary: one line per configuration (from the manifest) and the allreduce
microbenchmark's bandwidth per node count (from its table)."""
from __future__ import annotations

import math

from ..schema import RunDir


def _ms(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{1e3 * v:.1f}"


def _num(v, fmt="{:.0f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def config_lines(manifest: dict) -> list[str]:
    head = (f"{'config':<12}{'ranks':>6}{'b':>6}{'B':>7}{'load':>6}{'status':>8}{'step ms':>9}{'img/s':>8}"
            f"{'fwd+bwd':>9}{'allred':>8}{'update':>8}{'data':>7}{'B_simple':>10}")
    lines = [head, "-" * len(head)]
    for c in manifest.get("configs", []):
        s = c.get("summary") or {}
        lines.append(f"{c['config_id']:<12}{c['num_replicas']:>6}{c['local_batch']:>6}{c['global_batch']:>7}"
                     f"{_num(_load(c, manifest), '{:.1f}'):>6}{c['status']:>8}{_ms(s.get('step_time')):>9}{_num(s.get('images_per_sec')):>8}"
                     f"{_ms(s.get('compute_time')):>9}{_ms(s.get('allreduce_time')):>8}"
                     f"{_ms(s.get('update_time')):>8}{_ms(s.get('data_time')):>7}"
                     f"{_num(s.get('b_simple'), '{:.1f}'):>10}")
    return lines


def _load(c: dict, manifest: dict):
    """Threads wanting a core per core: above 1 the ranks of one host share its cores."""
    if not c.get("ranks_per_host") or not manifest.get("cores_per_host"):
        return None
    return c["ranks_per_host"] * (c.get("threads_per_rank") or 1) / manifest["cores_per_host"]


def allreduce_lines(rd: RunDir) -> list[str]:
    df = rd.read_table("allreduce")
    if df.empty:
        return []
    lines = ["allreduce (busbw, MB/s, by message size):"]
    sizes = sorted(df["size_bytes"].unique())
    lines.append(f"{'ranks':>6}" + "".join(f"{_size(s):>9}" for s in sizes))
    for n, g in df.groupby("num_replicas"):
        by = dict(zip(g["size_bytes"], g["busbw"]))
        lines.append(f"{n:>6}" + "".join(f"{by.get(s, math.nan) / 1e6:>9.1f}" for s in sizes))
    return lines


def _size(b: int) -> str:
    for unit, k in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if b >= k and b % k == 0:
            return f"{b // k}{unit}"
    return str(b)


def print_summary(rd: RunDir) -> None:
    m = rd.read_manifest()
    print("\n".join(config_lines(m)))
    ar = allreduce_lines(rd)
    if ar:
        print()
        print("\n".join(ar))
    failed = [c for c in m.get("configs", []) + m.get("allreduce_benchmarks", []) if c["status"] == "failed"]
    for c in failed:
        what = c.get("config_id") or f"allreduce n={c['num_replicas']}"
        print(f"failed {what}: {c.get('error')}")
    skipped = m.get("noise_nonfinite_skipped", 0)
    if skipped:
        print(f"gradient noise: {skipped} non-finite step(s) skipped")
    print(f"run directory: {rd.path}  (step ms = median production step, slowest rank; split columns = "
          f"medians of instrumented steps; load = ranks x threads per core of a host)")
