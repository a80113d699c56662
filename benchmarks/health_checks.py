"""The five data health checks at scale, against the valuation they follow, measured in the same
run.

Data: the demo's flights of 2013 (those that arrived, true outcome as label), in time order: the
first N as the training rows, the next N/10 as the holdout (as many as are left at the largest
size), through the demo's own preprocessing (``jobs.flights_training``: 4 scaled numbers and the
one-hot carrier and origin, 23 columns), K=5 as ``ImportanceSpec``. The model is fitted and the
review queue stood in for (as ``tests/core/test_health_core.py`` does) before any timing.

Timed, each in a fresh process (so that its peak memory is its own), the fastest of ``--repeats``
runs taken in turn: the valuation (one :func:`knn_shapley` call on the same training rows, holdout
and K: the peer), :func:`neighbour_graph` alone, and :func:`data_health` whole (the graph, k-means
clusters and the five checks). Peak memory: the process's resident high-water mark, beside what it
held before the timed call (inputs loaded, kernels compiled, scikit-learn imported). The findings
the graph decides (training rows with a feature twin, outliers) are printed beside the times, so
that runs of two versions of the code can be compared.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo's `jobs` package

from dcai_assets.core.columns import LABEL, LABEL_SOURCE, PARTITION
from dcai_assets.core.findings import DUPLICATES, OUTLIERS

K = 5
SIZES = (10_000, 30_000, 100_000, 300_000)
SHOW = [PARTITION, "carrier", "flight", "tailnum", "time_hour", LABEL]
WHAT = ("valuation", "graph", "health")


def prepare(rows: int, path: Path) -> tuple[int, int, int]:
    """The inputs of :func:`data_health` and :func:`knn_shapley` for ``rows`` training rows, pickled
    to ``path``; returns the training rows, holdout rows and feature columns."""
    from dcai_assets.core.valuation import preprocessed_features
    from jobs.flights_data import all_flights, arrived_late
    from jobs.flights_training import CATEGORICAL, NUMERIC, flights_pipeline

    features = NUMERIC + CATEGORICAL
    flights = all_flights()
    late = arrived_late(flights)
    flights = flights[late.notna()].assign(**{LABEL: np.where(late[late.notna()] == True, "late", "on_time")})  # noqa: E712
    flights = flights.sort_values(["day", "time_hour"], kind="stable").reset_index(drop=True)
    flights = flights.rename(columns={"day": PARTITION}).assign(**{LABEL_SOURCE: "lf"})
    train = flights.iloc[:rows].reset_index(drop=True)
    holdout = flights.iloc[rows : rows + rows // 10].reset_index(drop=True)
    pipeline = flights_pipeline().fit(train[features], train[LABEL])
    X_train = preprocessed_features(pipeline, train, features, "training")
    X_val = preprocessed_features(pipeline, holdout, features, "holdout")
    predicted = pipeline.predict(train[features]).astype(str)
    labels = train[LABEL].to_numpy()
    scores = train[SHOW].assign(
        **{LABEL_SOURCE: train[LABEL_SOURCE]},
        suggested_action=np.where(labels != predicted, np.char.add("relabel as ", predicted), ""),
    )
    inputs = {
        "train": train, "holdout": holdout, "X_train": X_train, "X_val": X_val,
        "holdout_predicted": pipeline.predict(holdout[features]).astype(str),
        "holdout_confidence": pipeline.predict_proba(holdout[features]).max(axis=1),
        "scores": scores, "scores_confidence": pipeline.predict_proba(train[features]).max(axis=1),
        "features": features,
    }  # fmt: skip
    with open(path, "wb") as f:
        pickle.dump(inputs, f, protocol=pickle.HIGHEST_PROTOCOL)
    return len(train), len(holdout), X_train.shape[1]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(path: Path, what: str) -> dict:
    """One timing of ``what`` in this process (warmed up on tiny inputs first)."""
    from dcai_assets.core.health import data_health, neighbour_graph
    from dcai_assets.core.knn_shapley import compile_kernels, knn_shapley

    with open(path, "rb") as f:
        d = pickle.load(f)
    rng = np.random.default_rng(0)
    compile_kernels()
    neighbour_graph(rng.normal(size=(50, 3)), rng.normal(size=(5, 3)), K)  # imports scikit-learn
    out: dict = {"base_mb": _maxrss_mb()}
    cpu = _cpu_seconds()
    started = time.perf_counter()
    if what == "valuation":
        knn_shapley(
            d["X_train"], d["train"][LABEL].to_numpy(), d["X_val"], d["holdout"][LABEL].to_numpy(), k=K
        )
    elif what == "graph":
        neighbour_graph(d["X_train"], d["X_val"], K)
    else:
        found = data_health(
            d["train"], d["holdout"], d["X_train"], d["X_val"], d["holdout_predicted"],
            d["holdout_confidence"], d["scores"], d["scores_confidence"], features=d["features"],
            classes=["on_time", "late"], show=SHOW, k=K,
        )  # fmt: skip
        out["twins"] = found[DUPLICATES].counts["training_feature_twins"]
        out["outliers"] = found[OUTLIERS].counts["outliers"]
        out["alarms"] = sorted(name for name, f in found.items() if f.alarm)
    out["seconds"] = time.perf_counter() - started
    out["cpu"] = _cpu_seconds() - cpu
    out["peak_mb"] = _maxrss_mb()
    if what == "graph":  # which search the graph used (after the timing; older code: brute force)
        from dcai_assets.core import health

        choose = getattr(health, "_tree_if_pruning", None)
        out["search"] = "brute" if choose is None or choose(d["X_train"], K + 1) is None else "k-d tree"
    return out


def _run_child(path: Path, what: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(path), what], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} on {path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in __import__("os").getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 and 30,000 training rows only")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"training rows (default {SIZES})")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each timing; the fastest counts")
    parser.add_argument(
        "--what", nargs="+", choices=WHAT, default=list(WHAT), help="what to time (default: all three)"
    )
    parser.add_argument("--child", nargs=2, metavar=("INPUTS", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return 0
    sizes = args.sizes or (SIZES[:2] if args.quick else SIZES)
    import dcai_assets

    print(f"dcai_assets from {Path(dcai_assets.__file__).parent.parent.name}; load average {_load()}")
    header = (
        f"{'train':>8} {'holdout':>7} {'health s':>9} {'graph s':>8} {'valuation s':>11} {'ratio':>6} "
        f"{'peak MB h/g/v (before)':>22} {'twins':>6} {'outliers':>8} {'search':>8}  load average"
    )
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in sizes:
            path = Path(tmp) / f"inputs_{rows}.pkl"
            n, m, cols = prepare(rows, path)
            best: dict[str, dict] = {}
            loads = [_load()]
            for _ in range(args.repeats):  # in turn, so that each sees the same machine
                for what in args.what:
                    result = _run_child(path, what)
                    if what not in best or result["seconds"] < best[what]["seconds"]:
                        best[what] = result
                    loads.append(_load())
            missing = {"seconds": np.nan, "peak_mb": np.nan, "twins": -1, "outliers": -1, "search": "-"}
            missing["alarms"] = "not timed"
            h, g, v = (best.get(w, missing) for w in ("health", "graph", "valuation"))
            base = min(r["base_mb"] for r in best.values())
            peaks = f"{h['peak_mb']:.0f}/{g['peak_mb']:.0f}/{v['peak_mb']:.0f} ({base:.0f})"
            line = (
                f"{n:>8,} {m:>7,} {h['seconds']:>9.2f} {g['seconds']:>8.2f} {v['seconds']:>11.2f} "
                f"{h['seconds'] / v['seconds']:>6.2f} {peaks:>22} {h['twins']:>6,} {h['outliers']:>8,} "
                f"{g['search']:>8}  {loads[0]} .. {loads[-1]}"
            )
            lines.append(
                line + f"  cpu s h/g/v {h.get('cpu', np.nan):.1f}/{g.get('cpu', np.nan):.1f}/{v['cpu']:.1f}"
            )
            print(f"{n:,} x {m:,} x {cols} features: health alarms {h['alarms']}", flush=True)
            print(header, *lines, sep="\n", flush=True)
    print(
        f"ratio: health / valuation, each the fastest of {args.repeats} runs in turn; "
        "peak: each process's resident high-water mark (health/graph/valuation), "
        "in brackets what it held before the timed call; cpu s: user + system seconds of those runs, "
        "all threads"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
