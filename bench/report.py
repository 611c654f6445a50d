"""Presenting results: the rich table on the terminal, a Markdown table, the PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.1:
        return f"{value:.3f}x"
    return f"{value:.2f}x"


def _cell(summary: dict[str, Any]) -> str:
    if not summary.get("applicable", True):
        return "n/a"
    if summary["median"] is None:
        return "failed"
    return f"{_number(summary['median'])} ({_number(summary['min'])}-{_number(summary['max'])})"


def rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: variant, per metric `median (min-max)`, per metric the ratio."""
    baseline = result["baseline"]
    metrics = result["metrics"]
    header = ["variant"]
    header += [
        meta["label"] if meta["label"] == meta["unit"] else f"{meta['label']} ({meta['unit']})"
        for meta in metrics.values()
    ]
    header += [f"{meta['label']} / baseline" for meta in metrics.values()]
    body = []
    for key, variant in result["variants"].items():
        label = variant["label"] + (" [baseline]" if key == baseline else "")
        if variant["errors"]:
            label += f" ({len(variant['errors'])} runs failed)"
        row = [label]
        row += [_cell(variant["metrics"][m]) for m in metrics]
        row += [_ratio(variant["metrics"][m]["ratio"]) for m in metrics]
        body.append(row)
    return header, body


def legend(result: dict[str, Any]) -> str:
    better = ", ".join(f"{m['label']}: {m['better']} is better" for m in result["metrics"].values())
    runs = f"{result['runs']} run" + ("s" if result["runs"] != 1 else "")
    return (
        f"median (min-max) of {runs} per variant; ratio = median / median of "
        f"the baseline ({result['baseline']}); {better}; sizes {result['params']}"
    )


def print_tables(results: dict[str, Any], console: Console) -> None:
    for name, result in results["benchmarks"].items():
        header, body = rows(result)
        table = Table(title=f"{name}: {result['title']}", caption=legend(result))
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in body:
            table.add_row(*row)
        console.print(table)


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Run {results['finished_at'][:16].replace('T', ' ')} UTC, mode `{results['mode']}`, "
        f"{machine['cpus']} CPUs, {machine['event_loop']}, Redis {machine['redis_server']}, "
        f"load average before the run {machine['load_before']}"
        + (
            f", CPU probe {machine['cpu_probe_ms']} ms (lower is a faster CPU)."
            if "cpu_probe_ms" in machine
            else "."
        ),
        "",
    ]
    source = results.get("source") or {}
    if source.get("commit"):
        changed = len(source.get("src_changes") or [])
        lines[0] += f" Commit `{source['commit'][:10]}`" + (
            f" with {changed} uncommitted changes under src/." if changed else "."
        )
    for name, result in results["benchmarks"].items():
        header, body = rows(result)
        lines += [f"**{name}**: {result['title']}", "", f"_{legend(result)}_", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in body)
        lines.append("")
    return "\n".join(lines)


def plot(name: str, result: dict[str, Any], path: Path) -> None:
    """One panel per metric: the median of each variant, with min-max as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result["metrics"]
    variants = result["variants"]
    labels = [v["label"] for v in variants.values()]
    width = max(9.0, 5.5 * len(metrics))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(width, 0.6 * len(labels) + 2.2), squeeze=False
    )
    for axis, (key, meta) in zip(axes[0], metrics.items(), strict=True):
        medians, lower, upper, colors = [], [], [], []
        for vkey, variant in variants.items():
            summary = variant["metrics"][key]
            median = summary["median"] or 0.0
            medians.append(median)
            lower.append(median - (summary["min"] if summary["min"] is not None else median))
            upper.append((summary["max"] if summary["max"] is not None else median) - median)
            if vkey.startswith("herald"):
                colors.append("#2b6cb0")
            elif vkey == result["baseline"]:
                colors.append("#718096")
            else:
                colors.append("#a0aec0")
        positions = list(range(len(labels)))
        axis.barh(positions, medians, xerr=[lower, upper], color=colors, capsize=3)
        axis.set_yticks(positions, labels)
        axis.invert_yaxis()
        if meta["log_scale"]:
            axis.set_xscale("log")
        better = "lower" if meta["better"] == "lower" else "higher"
        unit = "" if meta["unit"] == meta["label"] else f"{meta['unit']}, "
        axis.set_xlabel(f"{meta['label']} ({unit}{better} is better)")
        shown = [
            _number(median) if variant["metrics"][key].get("applicable", True) else "n/a"
            for median, variant in zip(medians, variants.values(), strict=True)
        ]
        for position, median, above, text in zip(positions, medians, upper, shown, strict=True):
            axis.annotate(
                text,
                (median + above, position),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        axis.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{name}: {result['title']}\nmedian of {result['runs']} runs, bars min-max")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
