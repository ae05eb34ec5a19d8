"""PNG plots from a results document, when matplotlib is installed (else none, and the report
says so): loss curves minidl vs PyTorch, and speed ratios as bars."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")               # files only, no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def loss_curves(doc: dict, path: Path, plt) -> bool:
    curves = {}
    for s in doc["sections"]:
        if s["key"] == "train_parity":
            curves = s.get("extra", {}).get("curves", {})
    curves = {k: v for k, v in curves.items() if v.get("minidl_losses")}
    if not curves:
        return False
    models = sorted({k.split("/")[0] for k in curves}, key=["MLP", "CNN", "GPT"].index)
    dtypes = ["float64", "float32"]
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 3.2 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for j, dtype in enumerate(dtypes):
            ax = axes[i][j]
            c = curves.get(f"{model}/{dtype}")
            if c is None:
                ax.set_axis_off()
                continue
            steps = range(1, len(c["minidl_losses"]) + 1)
            ax.plot(steps, c["minidl_losses"], label="minidl", lw=1.6)
            if c.get("reference_losses"):
                ax.plot(steps, c["reference_losses"], "--", label="PyTorch", lw=1.2)
                twin = ax.twinx()
                diff = [max(d, 1e-17) for d in c.get("rel_diff", [])]
                twin.semilogy(steps[:len(diff)], diff, color="gray", lw=0.8, alpha=0.7)
                limit = {"float64": 1e-4, "float32": 1e-3}[dtype]
                twin.axhline(limit, color="red", lw=0.8, ls=":")     # the parity target
                twin.set_ylabel("relative gap (red: target)", color="gray", fontsize=8)
            ax.set_title(f"{model} {dtype}", fontsize=10)
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.legend(fontsize=8, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return True


def speed_ratios(doc: dict, path: Path, plt) -> bool:
    rows = [r for s in doc["sections"] if s["key"] in ("speed_ops", "speed_train", "overhead")
            for r in s["rows"] if r.get("ratio") is not None and r.get("target")]
    if not rows:
        return False
    names = [r["name"] for r in rows][::-1]
    ratios = [r["ratio"] for r in rows][::-1]
    colors = ["tab:green" if r["verdict"].startswith("pass") else "tab:red" for r in rows][::-1]
    hatches = ["//" if r["verdict"].endswith("(noisy)") else "" for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(12, 0.32 * len(rows) + 1.4))
    bars = ax.barh(range(len(rows)), ratios, color=colors)
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("minidl time / PyTorch time (log scale; left of 1 = minidl faster; "
                  "green meets its target; hatched: noisy)")
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return True


def make_all(doc: dict, folder: Path) -> tuple[list, str]:
    """(file names written, message) -- the message says why there are none."""
    plt = _pyplot()
    if plt is None:
        return [], "matplotlib is not installed: no plots (pip install matplotlib)"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fn in (("loss_curves.png", loss_curves), ("speed_ratios.png", speed_ratios)):
        if fn(doc, folder / name, plt):
            written.append(name)
    return written, ""
