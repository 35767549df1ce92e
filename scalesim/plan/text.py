"""Text rendering of a plan (scalesim.plan.recommend.plan): the cheapest and fastest configurations
and the frontier table."""
from __future__ import annotations

import json
import sys

from ..units import format_duration


def _pct(x) -> str:
    return f"{100 * x:.0f} %"


def _interval_text(cfg) -> str:
    iv = cfg.get("interval")
    if not iv:
        return ""
    s = f" (5-95 %: {format_duration(iv['lo'])} - {format_duration(iv['hi'])}"
    if "p_meet" in iv:
        s += f"; meets the target in {_pct(iv['p_meet'])} of {iv['n']} bootstrap fits"
    return s + ")"


def describe_config(cfg: dict, indent: str = "  ") -> list[str]:
    acc = "no accumulation" if cfg["accum_steps"] == 1 else \
        f"{cfg['accum_steps']} accumulated micro-batches of {cfg['local_batch']}"
    eff = f"scaling efficiency {_pct(cfg['scaling_eff'])} vs 1 device"
    if "baseline_scaling_eff" in cfg:
        eff += f", {_pct(cfg['baseline_scaling_eff'])} vs the baseline"
    lines = [
        f"{cfg['num_nodes']} node{'s' if cfg['num_nodes'] != 1 else ''} x {cfg['devices_per_node']} "
        f"device{'s' if cfg['devices_per_node'] != 1 else ''} = {cfg['num_replicas']} "
        f"device{'s' if cfg['num_replicas'] != 1 else ''}; global batch {cfg['global_batch']} = {cfg['rank_batch']} per device ({acc})",
        f"learning rate: {cfg['lr']['schedule']}",
        f"predicted time {format_duration(cfg['time'])}{_interval_text(cfg)}",
        f"{cfg['steps']:,.0f} steps x {cfg['step_time']:.4g} s; throughput {cfg['throughput']:,.0f} samples/s",
        f"{eff}; statistical efficiency {_pct(cfg['stat_eff'])} vs the reference batch; cost {cfg['device_hours']:,.1f} device-hours",
    ]
    if cfg.get("extrapolation"):
        lines.append("EXTRAPOLATION: " + "; ".join(cfg["extrapolation"]))
    if cfg.get("accuracy_at_risk"):
        lines.append("ACCURACY AT RISK: the global batch exceeds the noise scale B_noise at a fixed epoch budget")
    return [indent + s for s in lines]


def config_table(cfgs: list[dict]) -> list[str]:
    has_base = any("baseline_scaling_eff" in c for c in cfgs)
    has_iv = any(c.get("interval") for c in cfgs)
    head = f"  {'nodes x dev':>11} {'devices':>7} {'batch':>7} {'b x acc':>9} {'step s':>8} {'samples/s':>10} " \
           f"{'time':>9}" + (f" {'5-95 %':>19}" if has_iv else "") + f" {'dev-h':>9} {'scal':>5} {'stat':>5}" \
           + (f" {'vs base':>7}" if has_base else "") + "  note"
    lines = [head]
    for c in cfgs:
        iv = c.get("interval")
        ivs = f"{format_duration(iv['lo'])}-{format_duration(iv['hi'])}" if iv else "-"
        notes = (["extrapolated"] if c.get("extrapolation") else []) + \
            (["too slow"] if c.get("meets_target") is False else []) + \
            (["accuracy at risk"] if c.get("accuracy_at_risk") else [])
        lines.append(
            f"  {str(c['num_nodes']) + ' x ' + str(c['devices_per_node']):>11} {c['num_replicas']:>7} "
            f"{c['global_batch']:>7} {str(c['local_batch']) + ' x ' + str(c['accum_steps']):>9} "
            f"{c['step_time']:>8.4g} {c['throughput']:>10,.0f} {format_duration(c['time']):>9}"
            + (f" {ivs:>19}" if has_iv else "")
            + f" {c['device_hours']:>9,.1f} {_pct(c['scaling_eff']):>5} {_pct(c['stat_eff']):>5}"
            + (f" {_pct(c['baseline_scaling_eff']):>7}" if has_base else "") + "  " + ", ".join(notes))
    return lines


def render(p: dict) -> str:
    t = p["target"]
    lines = []
    reach = f"Target: {t['label']}"
    if t["target_time_s"] is not None:
        reach += f", within {format_duration(t['target_time_s'])}"
    lines.append(reach)
    if t.get("regime"):
        lines.append(f"  regime: {t['regime']}")
    else:  # plans written before the regime was recorded
        lines.append("  steps scale as S_min (1 + B_noise/B) with B_noise = "
                     f"{t['b_noise']:,.0f} (McCandlish et al. 2018)" if t["b_noise"] else
                     "  no noise-scale fit: samples to target assumed independent of the batch (linear scaling "
                     "rule regime, Goyal et al. 2017)")
    sp = p["space"]
    lines.append(f"Searched {p['searched']:,} configurations: {sp['num_nodes'][0]}-{sp['num_nodes'][1]} nodes x "
                 f"{','.join(map(str, sp['devices_per_node']))} devices/node, global batch "
                 f"{sp['global_batch'][0]}-{sp['global_batch'][1]}"
                 + (f", micro-batch <= {sp['max_local_batch']}" if sp["max_local_batch"] else "")
                 + (f"; intervals from {p['bootstrap_sets']} bootstrap fits" if p["bootstrap_sets"] else
                    "; no bootstrap fits in the model, so no intervals"))
    lines += [f"Note: {n}" for n in p.get("notes", [])]
    if p.get("rests_on"):
        lines.append("Rests on (not pinned by the measurements):")
        lines += [f"  - {n}" for n in p["rests_on"]]
    lines.append("")
    if t["target_time_s"] is not None:
        if p["cheapest"] is not None:
            lines.append(f"Cheapest configuration that meets {format_duration(t['target_time_s'])}:")
            lines += describe_config(p["cheapest"])
        else:
            lines.append(f"NO configuration meets {format_duration(t['target_time_s'])}: the best achievable time is "
                         f"{format_duration(p['fastest']['time'])} (fastest configuration below).")
        lines.append("")
    lines.append("Fastest configuration:")
    lines += describe_config(p["fastest"])
    if p.get("configs"):
        lines += ["", "All configurations (scal = scaling efficiency vs 1 device, stat = statistical efficiency "
                      f"vs batch {t['ref_batch']:g}):"] + config_table(p["configs"])
    else:
        lines += ["", "Time/cost frontier (no other configuration is both faster and cheaper; scal = scaling "
                      f"efficiency vs 1 device, stat = statistical efficiency vs batch {t['ref_batch']:g}):"]
        lines += config_table(p["frontier"])
    if any(c.get("extrapolation") for c in [p["fastest"], p["cheapest"] or {}, *p["frontier"]]):
        lines.append("  extrapolated = outside the measured ranges of the fitting data; treat with care")
    return "\n".join(lines)


def emit(p: dict, as_json: bool) -> None:
    if as_json:
        json.dump(p, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(p))
