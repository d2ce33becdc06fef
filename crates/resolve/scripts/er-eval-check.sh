#!/usr/bin/env bash
# Proves the `scale` example's scorer against the peers' reference: runs
# kith on gen_scale's population with every candidate pair's score kept,
# writes its pairs and clusters as er_eval.py reads them, scores them with
# er_eval.evaluate_scored_pairs and evaluate_clusters, and compares every
# figure with the one kith printed. Exits non-zero on any difference.
#
#   crates/resolve/scripts/er-eval-check.sh [N]      # default 200000
#
# Needs gen_scale's data in $SCALE_DATA (default /tmp/kith-scale-data) and
# the peers' virtual environment (numpy): see shared/peers/README.md.
# PEERS_PY overrides its python; CARGO_TARGET_DIR where kith is built.
set -euo pipefail
n=${1:-200000}
here=$(cd "$(dirname "$0")/../../.." && pwd)
peers=${PEERS_DIR:-$here/../shared/peers}
py=${PEERS_PY:-/tmp/peers-venv/bin/python}
data=${SCALE_DATA:-/tmp/kith-scale-data}
target=${CARGO_TARGET_DIR:-$here/target}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release -q -p kith-resolve --example scale --manifest-path "$here/Cargo.toml"
"$target/release/examples/scale" --n "$n" --data "$data" \
  --write-pairs "$out/pairs.csv" --write-clusters "$out/clusters.csv" >"$out/kith.json"

PYTHONPATH="$peers" "$py" - "$out" "$data/scale_${n}_truth.csv" <<'PY'
import csv, json, math, sys
import numpy as np
from er_eval import evaluate_clusters, evaluate_scored_pairs, load_truth

out, truth_path = sys.argv[1], sys.argv[2]
kith = json.load(open(f"{out}/kith.json"))
truth = load_truth(truth_path)
with open(f"{out}/pairs.csv", newline="") as f:
    r = csv.reader(f)
    next(r)
    rows = list(r)
ref = evaluate_scored_pairs([a for a, _, _ in rows], [b for _, b, _ in rows],
                            np.array([float(p) for _, _, p in rows]), truth, kith["threshold"])
with open(f"{out}/clusters.csv", newline="") as f:
    r = csv.reader(f)
    next(r)
    rows = list(r)
ref.update(evaluate_clusters([a for a, _ in rows], [c for _, c in rows], truth))
bad = 0
print(f"{'figure':<26} {'er_eval.py':>22} {'kith':>22}")
for k, v in ref.items():
    if v is None or k not in kith:
        continue
    mine = kith[k]
    same = math.isclose(float(v), float(mine), rel_tol=1e-12, abs_tol=1e-12)
    bad += not same
    print(f"{k:<26} {float(v):>22.12g} {float(mine):>22.12g} {'' if same else '  DIFFERENT'}")
print("every figure agrees" if not bad else f"{bad} figure(s) differ")
sys.exit(1 if bad else 0)
PY
