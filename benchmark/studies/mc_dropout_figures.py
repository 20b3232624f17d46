"""The MC-dropout study's figures: one panel per configuration (rows: masks, columns: rates)."""
from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from benchmark.reports.figures.common import plt, save, seed_stats, style


def _grid(configs):
    masks = list(dict.fromkeys(mask for _, mask in configs))
    rates = sorted({rate for rate, _ in configs})
    fig, axes = plt.subplots(len(masks), len(rates), figsize=(4.6 * len(rates), 3.9 * len(masks)), squeeze=False,
                             sharey=True, layout="constrained")
    return fig, {(rate, mask): axes[masks.index(mask)][rates.index(rate)] for rate, mask in configs}


def study_figures(out: Path, frames: dict) -> list[Path]:
    """The two figures under ``out``, from each configuration's cycles table ({(rate, mask): frame})."""
    configs = list(frames)
    names = sorted({s for f in frames.values() for s in f["strategy"]})
    curves, regimes = _grid(configs), _grid(configs)
    for config, cycles in frames.items():
        stats = seed_stats(cycles, "miou")
        ax, rx = curves[1][config], regimes[1][config]
        for name in names:
            colour, marker, line = style(name, names)
            curve = stats[stats["strategy"] == name].sort_values("fraction")
            ax.plot(curve["fraction"], curve["mean"], color=colour, marker=marker, ms=4, lw=1.5, ls=line, label=name)
            band = curve[curve["n"] >= 2]
            ax.fill_between(band["fraction"], band["mean"] - band["half"], band["mean"] + band["half"],
                            color=colour, alpha=0.12, lw=0)
            share = cycles[cycles["strategy"] == name].groupby("cycle")["balent_positive_share"].mean()
            rx.plot(share.index, 100 * share.to_numpy(), color=colour, marker=marker, ms=4, lw=1.5, label=name)
        title = f"rate {config[0]:g}, {config[1]} masks"
        ax.set(xscale="log", title=title, xlabel="labelled fraction (log)", ylabel="mIoU (%)")
        rx.set(title=title, xlabel="cycle", ylabel="pool pixels with BalEnt > 0 (%)")
        rx.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        rx.grid(True, alpha=0.3)
    paths = []
    for (fig, axes), name, text in ((curves, "study_learning_curves.png", "learning curves (mean over seeds, "
                                     "band = 95% t-interval)"),
                                    (regimes, "study_balent_regime.png", "share of the unlabelled pool where BalEnt "
                                     "is positive (the paper's 'balanced' branch), per strategy's pool and model")):
        handles, labels = next(iter(axes.values())).get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right center", fontsize=9)
        fig.suptitle(f"MC dropout study on the embedded default: {text}", fontsize=11)
        paths.append(save(fig, out / name))
    return paths
