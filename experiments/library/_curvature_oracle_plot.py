"""Figure of yellowfin-curvature-oracle: tuned mu against SingleStep at the truth over kappa, the
speed ladder against re-tuned heavy ball (iterations and gradient evaluations), the rebound, and the
network bed (loss over gradient evaluations, tuned mu against SingleStep at the truth)."""

from __future__ import annotations

from matplotlib.figure import Figure

from experiments.framework import Record, figure, style


def plot(record: Record) -> Figure:
    """Four panels: mu vs kappa; loss vs gradient evaluations; alpha and loss over time; the
    network's excess loss vs gradient evaluations."""
    arr = record.arrays
    fig, axes = figure(2, 2, height=11.0)
    ax_mu, ax_speed, ax_rb, ax_net = axes.ravel()

    sw = arr["sweep"]  # kappa, mu, lo, hi, mu_ss, tol, mu_ss(own C, D), robust bound
    kappa = sw[:, 0]
    ax_mu.fill_between(kappa, sw[:, 4] - sw[:, 5], sw[:, 4] + sw[:, 5], color="0.85", lw=0)
    ax_mu.plot(kappa, sw[:, 4], **style("theory", label="SingleStep, true statistics"))
    ax_mu.plot(kappa, sw[:, 7], **style("bound", label="robust lower bound"))
    ax_mu.plot(
        kappa, sw[:, 6], color="0.4", ls="-.", lw=1, label="SingleStep, true h, YellowFin's C, D"
    )
    ax_mu.errorbar(
        kappa,
        sw[:, 1],
        yerr=[sw[:, 1] - sw[:, 2], sw[:, 3] - sw[:, 1]],
        **style("yellowfin", linestyle="none", label="YellowFin, Hessian oracle"),
    )
    ax_mu.set(xscale="log", xlabel="kappa", ylabel="late momentum", title="tuned mu vs theory")
    ax_mu.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18))

    g = float(arr["g_per_step"])
    t = arr["t"]
    ax_speed.plot(
        t * g,
        arr["main_loss"].mean(0),
        **style("yellowfin", marker=None, label=f"YellowFin, Hessian ({g:.1f} g/step)"),
    )
    for i, curve in enumerate(arr["hb_curves"]):
        ax_speed.plot(
            arr["t_hb"][1:],
            curve[1:],
            **style(
                "heavy-ball",
                marker=None,
                alpha=0.4 + 0.6 * i / max(len(arr["hb_curves"]), 1),
                label="heavy ball re-tuned per target (1 g/step)" if i == 0 else None,
            ),
        )
    for i, target in enumerate(arr["speed"][:, 0]):
        ax_speed.axhline(target, color="0.6", lw=0.6, ls=":", label="targets" if i == 0 else None)
    ax_speed.set(
        xscale="log",
        yscale="log",
        xlabel="gradient evaluations",
        ylabel="loss",
        title="loss ladder, cost in gradient evaluations",
    )
    ax_speed.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18))

    lr = arr["main_lr"].mean(0)
    ax_rb.plot(t, lr / lr[-1], **style("yellowfin", marker=None, label="alpha / late alpha"))
    loss = arr["main_loss"].mean(0)
    ax_rb.plot(t, loss / loss[-1], color="0.3", lw=1, label="loss / late loss")
    ax_rb.axvline(float(arr["best_step"]), color="0.5", lw=0.8, ls="-.", label="best loss")
    ax_rb.set(xscale="log", yscale="log", xlabel="step", title="late rebound?")
    ax_rb.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18))
    _network_panel(ax_net, arr)
    return fig


def _network_panel(ax, arr) -> None:
    f_star = float(arr["net_f_star"])
    t = arr["net_t"]
    labels = ("YellowFin, Hessian", "YellowFin, ||g||^2")
    for i, (label, ls) in enumerate(zip(labels, ("-", "--"), strict=True)):
        g = float(arr["net_g_per_step"][i])
        ax.plot(
            t * g,
            arr["net_loss"][i] - f_star,
            **style(
                "yellowfin",
                marker=None,
                linestyle=ls,
                label=f"{label} ({g:.1f} g/step): mu {arr['net_mu'][i][-1]:.4f}, "
                f"SingleStep {float(arr['net_mu_singlestep'][i]):.3f}",
            ),
        )
    for i, curve in enumerate(arr["net_hb_curves"]):
        ax.plot(
            arr["net_t_hb"][1:],
            curve[1:] - f_star,
            **style(
                "heavy-ball",
                marker=None,
                alpha=0.4 + 0.6 * i / max(len(arr["net_hb_curves"]), 1),
                label="heavy ball re-tuned per target (1 g/step)" if i == 0 else None,
            ),
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="gradient evaluations",
        ylabel="f - f(x*)",
        title="network (digits tanh MLP)",
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18))
