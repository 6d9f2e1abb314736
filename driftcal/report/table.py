"""The Markdown summary of a paper-study result: the comparison with the paper, one table per study.

Each study row says whether the adversarial method **wins**, **ties** or **loses** against the better
baseline: it wins when its mean is lower by more than the two spreads combined
(``sqrt(std_adv² + std_base²)``), loses when it is higher by more than that, and ties otherwise.
"""

from __future__ import annotations

import math
from typing import Any

from driftcal.report.figures import FILES
from driftcal.report.load import LABELS, METHODS, studies_in
from driftcal.report.reference import PAPER

HEAD = "| " + " | ".join(LABELS[m] for m in METHODS) + " |"


def fmt(stat: dict[str, Any] | None, digits: int = 4) -> str:
    """``mean ± std`` of a statistic, ``—`` when absent.

    >>> fmt({"mean": 0.046012, "std": 0.00181})
    '0.04601 ± 0.0018'
    >>> fmt(None)
    '—'
    """
    if not stat or stat.get("mean") is None:
        return "—"
    mean, std = float(stat["mean"]), stat.get("std")
    if std is None or not math.isfinite(float(std)):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {float(std):.2g}"


def verdict(adv: dict[str, Any], baselines: list[dict[str, Any]], lower_is_better: bool = True) -> str:
    """``wins``, ``ties`` or ``loses`` of the adversarial statistic against the best baseline.

    >>> verdict({"mean": 0.04, "std": 0.002}, [{"mean": 0.06, "std": 0.001}, {"mean": 0.05, "std": 0.002}])
    'wins'
    >>> verdict({"mean": 0.05, "std": 0.002}, [{"mean": 0.051, "std": 0.002}])
    'ties'
    """
    sign = 1.0 if lower_is_better else -1.0
    valid = [b for b in baselines if b and b.get("mean") is not None]
    if not adv or adv.get("mean") is None or not valid:
        return "—"
    best = min(valid, key=lambda b: sign * float(b["mean"]))
    spread = math.hypot(float(adv.get("std") or 0.0), float(best.get("std") or 0.0))
    diff = sign * (float(adv["mean"]) - float(best["mean"]))
    if diff < -spread:
        return "wins"
    if diff > spread:
        return "loses"
    return "ties"


def _at(stats: dict[str, Any], i: int) -> dict[str, Any]:
    return {"mean": stats["mean"][i], "std": stats["std"][i]}


def _index(values: list[float], target: float) -> int | None:
    hits = [i for i, v in enumerate(values) if math.isclose(float(v), target, rel_tol=1e-6, abs_tol=1e-12)]
    return hits[0] if hits else None


def _paper(name: str) -> str:
    entry = PAPER[name]
    return fmt({"mean": entry["value"], "std": entry["std"]})


def comparison(doc: dict[str, Any]) -> list[str]:
    """Our numbers beside the paper's (the rows the document allows)."""
    rows = [
        "| quantity | paper: adversarial | paper: ratio of means " + HEAD + " adversarial vs best baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    cell = doc.get("cellwise")
    if cell:
        m = cell["methods"]
        for key, label, paper_adv, paper_ratio in (
            ("rmse", "RMSE, ε = 0.01", _paper("rmse"), _paper("ratio_of_means_rmse")),
            ("r2", "R², ε = 0.01", _paper("r2"), "—"),
        ):
            stats = [m[x][key] for x in METHODS]
            v = verdict(stats[0], stats[1:], lower_is_better=key == "rmse")
            rows.append(
                f"| {label} | {paper_adv} | {paper_ratio} | " + " | ".join(map(fmt, stats)) + f" | {v} |"
            )
    eps = doc.get("epsilon_sweep")
    if eps:
        xs = eps["x"]["values"]
        for target, name in ((0.0, "rmse_eps0"), (0.05, "rmse_eps005")):
            i = _index(xs, target)
            if i is None:
                continue
            stats = [_at(eps["methods"][x]["rmse"], i) for x in METHODS]
            v = verdict(stats[0], stats[1:])
            label = f"RMSE, ε = {target:g}"
            rows.append(f"| {label} | {_paper(name)} | — | " + " | ".join(map(fmt, stats)) + f" | {v} |")
    trk = doc.get("tracker_noise")
    if trk:
        i = _index(trk["x"]["values"], 1e-3)
        if i is not None:
            stats = [_at(trk["methods"][x]["abs_error"], i) for x in METHODS]
            v = verdict(stats[0], stats[1:])
            rows.append(
                "| tracker abs error, σ = 1e-3 | < 1e-3 | — | " + " | ".join(map(fmt, stats)) + f" | {v} |"
            )
    return rows if len(rows) > 2 else []


def _sweep_rows(section: dict[str, Any], key: str, x_label: str, extra: list[str] | None = None) -> list[str]:
    xs = section["x"]["values"]
    head = f"| {x_label} " + ("| " + " | ".join(extra) + " " if extra else "") + HEAD + " adversarial |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for i, x in enumerate(xs):
        stats = [_at(section["methods"][m][key], i) for m in METHODS]
        pre = f"| {x:g} "
        if extra:
            pre += "| " + " | ".join(section["_extra"][i]) + " "
        rows.append(pre + "| " + " | ".join(map(fmt, stats)) + f" | {verdict(stats[0], stats[1:])} |")
    return rows


def study_tables(doc: dict[str, Any]) -> list[str]:
    """One table per study present in the document."""
    out: list[str] = []
    for study in studies_in(doc):
        s = doc[study]
        out += ["", f"### {s.get('figure', '')}: {s.get('title', study)} (`{study}`)", ""]
        m = s["methods"]
        if study in ("esum", "esum_calibrated"):
            out += [
                "| E_sum, changed events | uncalibrated | calibrated with the true gains " + HEAD,
                "|---|---|---|---|---|---|",
                f"| W1 to the undamaged E_sum (MeV) | {fmt(s['uncalibrated']['w1'])} | "
                f"{fmt(s['true_gains']['w1'])} | " + " | ".join(fmt(m[x]["w1"]) for x in METHODS) + " |",
                f"| mean E_sum ratio | {fmt(s['uncalibrated']['mean_ratio'])} | "
                f"{fmt(s['true_gains']['mean_ratio'])} | "
                + " | ".join(fmt(m[x]["mean_ratio"]) for x in METHODS)
                + " |",
            ]
        elif study == "tracker_noise":
            s = dict(s, _extra=[[f"{v:.2g}"] for v in s["floor"]["expected_abs_error"]])
            out += _sweep_rows(s, "abs_error", "σ", ["floor: expected abs error"])
            lost = ", ".join(f"{LABELS[x]}: {m[x].get('sigma_lost')}" for x in METHODS)
            out += ["", f"Identifiability lost ({s['identifiability']['lost_when']}) at σ = {lost}."]
        elif study == "rmse_vs_epoch":
            curve = m["adversarial"]["curve"]
            out += [
                "| | " + " | ".join(LABELS[x] for x in METHODS) + " |",
                "|---|---|---|---|",
                "| final RMSE | " + " | ".join(fmt(m[x]["rmse"]) for x in METHODS) + " |",
                f"| adversarial RMSE at step {s['x']['values'][0]} / {s['x']['values'][-1]} | "
                f"{fmt(_at(curve, 0))} / {fmt(_at(curve, -1))} | | |",
            ]
        elif study == "cellwise":
            out += [
                f"| over {s['cells']} cells | " + " | ".join(LABELS[x] for x in METHODS) + " |",
                "|---|---|---|---|",
                *(
                    f"| {k} | " + " | ".join(fmt(m[x][k]) for x in METHODS) + " |"
                    for k in ("rmse", "r2", "seconds")
                ),
            ]
        else:
            label = "ε" if study == "epsilon_sweep" else "threshold (MeV)"
            out += _sweep_rows(s, "rmse", label)
    return out


def performance(doc: dict[str, Any]) -> list[str]:
    """The throughput lines of the run (steps/s, events/s, share of the bf16 peak)."""
    perf = doc.get("performance")
    if not perf or "steps_per_s" not in perf:
        return []
    share = perf.get("share_of_bf16_peak")
    share_text = f"{100 * share:.1f} %" if share is not None else "— (no known bf16 peak for this device)"
    return [
        "",
        "## Throughput of the adversarial step",
        "",
        "| device | steps/s | events/s | TFLOPS (estimated) | share of the bf16 peak |",
        "|---|---|---|---|---|",
        f"| {perf['device']} | {perf['steps_per_s']:.3g} | {perf['events_per_s']:.3g} | "
        f"{perf['tflops']:.3g} | {share_text} |",
    ]


def summary_markdown(doc: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """The whole summary: header, comparison with the paper, per-study tables, figures, throughput."""
    settings = doc.get("settings", {})
    env = doc.get("environment", {})
    lines = [
        "# driftcal: the paper's studies",
        "",
        f"Mode `{doc.get('mode', '?')}`, {settings.get('seeds', '?')} seeds, "
        f"device {env.get('device', '?')}, "
        f"driftcal {doc.get('versions', {}).get('driftcal', '?')}, "
        f"{doc.get('timings', {}).get('total_seconds') or 0:.0f} s. Mean ± std over seeds.",
    ]
    comp = comparison(doc)
    if comp:
        lines += ["", "## Beside the paper", "", *comp]
    lines += ["", "## Studies", *study_tables(doc)]
    figures = figures if figures is not None else {s: FILES[s] for s in studies_in(doc)}
    if figures:
        lines += ["", "## Figures", ""]
        lines += [
            f"![{doc[s].get('figure', s)}: {doc[s].get('title', s)}]({name})" for s, name in figures.items()
        ]
    lines += performance(doc)
    missing = [s for s in FILES if s not in doc]
    if missing:
        lines += ["", f"Not in this run: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"
