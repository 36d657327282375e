#!/usr/bin/python3
"""Draws the loss curve(s) written by `minicpm train` (OUT/loss.csv) as a PNG.

Run it with Debian's python (/usr/bin/python3, python3-matplotlib), not a pyenv python:

    /usr/bin/python3 tools/plot_loss.py runs/a/loss.csv -o runs/a/loss.png
    /usr/bin/python3 tools/plot_loss.py pretrain.csv sft.csv --labels pretraining SFT -o loss.png

One panel per CSV: the training loss per update (light), its exponential moving average, the held-out
loss at the evaluation steps (dots, with perplexity in the legend), and the learning rate on a second
axis. CSV columns: step,tokens,lr,loss,grad_norm,eval_loss,eval_ppl,tok_per_s,elapsed_s (eval
columns empty on steps without an evaluation).
"""
import argparse
import csv
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append(r)
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows


def ema(values, alpha):
    out, m = [], None
    for v in values:
        m = v if m is None else alpha * m + (1 - alpha) * v
        out.append(m)
    return out


def main():
    ap = argparse.ArgumentParser(description="plot minicpm train loss curves")
    ap.add_argument("csv", nargs="+", help="loss.csv file(s) written by minicpm train")
    ap.add_argument("--labels", nargs="*", help="panel titles (default: file names)")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    ap.add_argument("--smooth", type=float, default=0.9, help="EMA factor of the smoothed training loss")
    args = ap.parse_args()
    labels = args.labels or args.csv
    if len(labels) != len(args.csv):
        raise SystemExit("--labels needs one label per CSV")

    fig, axes = plt.subplots(1, len(args.csv), figsize=(6.5 * len(args.csv), 4.2), squeeze=False)
    for ax, path, label in zip(axes[0], args.csv, labels):
        rows = read(path)
        step = [int(r["step"]) for r in rows]
        loss = [float(r["loss"]) for r in rows]
        lr = [float(r["lr"]) for r in rows]
        ev = [(int(r["step"]), float(r["eval_loss"])) for r in rows if r["eval_loss"]]
        ax.plot(step, loss, color="tab:blue", alpha=0.25, linewidth=0.8, label="train loss")
        ax.plot(step, ema(loss, args.smooth), color="tab:blue", linewidth=1.6, label=f"train loss (EMA {args.smooth})")
        if ev:
            final = ev[-1][1]
            ax.plot([s for s, _ in ev], [v for _, v in ev], "o-", color="tab:red", markersize=3.5,
                    label=f"held-out loss (final {final:.3f}, ppl {math.exp(final):.1f})")
        tokens = int(rows[-1]["tokens"])
        speeds = [float(r["tok_per_s"]) for r in rows if r["tok_per_s"] and float(r["tok_per_s"]) > 0]
        speed = f", {sorted(speeds)[len(speeds) // 2]:.0f} tok/s" if speeds else ""
        ax.set_title(f"{label}: {len(rows)} updates, {tokens / 1e6:.1f}M tokens{speed}", fontsize=10)
        ax.set_xlabel("update")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(step, lr, color="tab:green", linewidth=1.0, alpha=0.7, label="learning rate")
        ax2.set_ylabel("learning rate", color="tab:green")
        ax2.tick_params(axis="y", colors="tab:green")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
