"""Probe training: interplab's torch-LBFGS logistic probe vs scikit-learn's LogisticRegression (lbfgs).

Synthetic activations [n, d] with a planted class direction (default 100k x 768, like a GPT-2-small
residual stream). Both minimise the same objective (C * sum logloss + ||w||^2 / 2 on standardised
features) to the same gradient tolerance; the table gives wall time, held-out accuracy, the final
objective (lower is better; equal means both converged to the same optimum) and the time ratio.

    python bench/probe.py                       # CPU, or CUDA when present
    python bench/probe.py --device cuda --n 100000 --d 768
    python bench/probe.py --n 20000 --d 256     # quick run
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from interplab.common import get_device
from interplab.probes.linear import LinearProbeConfig, evaluate, train_linear_probe


def planted(n: int, d: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Anisotropic Gaussian activations whose labels follow a planted direction plus logistic noise."""
    gen = torch.Generator().manual_seed(seed)
    scales_D = torch.logspace(-1, 1, d)  # residual streams have a few large-variance directions
    X = torch.randn(n, d, generator=gen) * scales_D + torch.randn(d, generator=gen)
    w_D = torch.randn(d, generator=gen) / scales_D  # the signal lives partly in low-variance directions
    logits = (X - X.mean(0)) @ w_D
    logits = 3.0 * logits / logits.std()
    y = (torch.rand(n, generator=gen) < torch.sigmoid(logits)).long()
    return X.to(device), y.to(device)


def objective(w_D: torch.Tensor, b: float, Z_ND: torch.Tensor, y_N: torch.Tensor, C: float) -> float:
    """C * sum logloss + ||w||^2 / 2 in float64 (the quantity both solvers minimise)."""
    logits = Z_ND.double() @ w_D.double() + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_N.double(), reduction="sum")
    return float(C * loss + 0.5 * w_D.double().pow(2).sum())


def run_ours(X, y, Xt, yt, C, tol, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    probe = train_linear_probe(X, y, LinearProbeConfig(C=C, tol=tol, dtype="float32", device=str(device)))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    Z = (X.double() - probe.mean_D.double()) / probe.std_D.double()
    return seconds, evaluate(probe, Xt, yt).accuracy, objective(probe.weight_D, probe.bias, Z, y.double(), C)


def run_sklearn(X, y, Xt, yt, C, tol):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    Xn, yn, Xtn = X.cpu().numpy(), y.cpu().numpy(), Xt.cpu().numpy()
    start = time.perf_counter()
    scaler = StandardScaler().fit(Xn)
    clf = LogisticRegression(C=C, tol=tol, max_iter=10_000).fit(scaler.transform(Xn), yn)
    seconds = time.perf_counter() - start
    accuracy = float(clf.score(scaler.transform(Xtn), yt.cpu().numpy()))
    Z = torch.from_numpy(scaler.transform(Xn))
    return (
        seconds,
        accuracy,
        objective(torch.from_numpy(clf.coef_[0]), float(clf.intercept_[0]), Z, y.cpu(), C),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="training rows")
    parser.add_argument("--d", type=int, default=768, help="activation width")
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength (scikit-learn's C)")
    parser.add_argument(
        "--tol", type=float, default=1e-4, help="gradient tolerance for both (sklearn's default)"
    )
    parser.add_argument("--device", default=None, help="cpu / cuda (default: CUDA when present)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = get_device(args.device)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    X, y = planted(args.n + args.n // 5, args.d, args.seed, device)
    X, y, Xt, yt = X[: args.n], y[: args.n], X[args.n :], y[args.n :]

    run_ours(X[:1000], y[:1000], Xt, yt, args.C, args.tol, device)  # warm-up (CUDA context, kernels)
    ours = run_ours(X, y, Xt, yt, args.C, args.tol, device)
    ref = run_sklearn(X, y, Xt, yt, args.C, args.tol)

    table = Table(title=f"Logistic probe, {args.n:,} x {args.d}, C={args.C}, tol={args.tol}")
    for column in ("solver", "device", "seconds", "test accuracy", "objective", "time vs sklearn"):
        table.add_column(column, justify="right")
    table.add_row(
        "interplab LBFGS (fp32)",
        str(device),
        f"{ours[0]:.2f}",
        f"{ours[1]:.4f}",
        f"{ours[2]:.2f}",
        f"{ours[0] / ref[0]:.2f}x",
    )
    table.add_row("sklearn lbfgs (fp64)", "cpu", f"{ref[0]:.2f}", f"{ref[1]:.4f}", f"{ref[2]:.2f}", "1.00x")
    Console().print(table)


if __name__ == "__main__":
    main()
