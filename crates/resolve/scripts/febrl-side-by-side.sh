#!/usr/bin/env bash
# Runs kith and the peers (Splink, recordlinkage) on the FEBRL sets, each
# whole process under /usr/bin/time -v, interleaved so that they share the
# machine's conditions, and prints the side-by-side table (medians).
#
#   crates/resolve/scripts/febrl-side-by-side.sh [RUNS]        # default 3
#
# Needs the peers' virtual environment (see shared/peers/README.md):
#   python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r ../shared/peers/requirements.txt
# PEERS_PY overrides its python; SKIP_PEERS=1 runs kith alone.
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/../../.." && pwd)
peers=${PEERS_DIR:-$here/../shared/peers}
py=${PEERS_PY:-/tmp/peers-venv/bin/python}
out=$(mktemp -d)
cargo build --release -q -p kith-resolve --example febrl --manifest-path "$here/Cargo.toml"
kith=$here/target/release/examples/febrl

timed() { # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" >"$out/$name.json" 2>"$out/$name.time"
}

for r in $(seq "$runs"); do
  for d in febrl4 febrl3; do
    timed "kith-$d-$r" "$kith" --dataset "$d"
    if [ -z "${SKIP_PEERS:-}" ]; then
      (cd "$peers" && timed "splink-$d-$r" "$py" splink_febrl.py --dataset "$d" --model full --u-max-pairs 1e6 --quiet)
    fi
  done
  if [ -z "${SKIP_PEERS:-}" ]; then
    (cd "$peers" && timed "rl-febrl4-$r" "$py" rl_febrl.py --dataset febrl4)
  fi
done

python3 - "$out" "$runs" <<'PY'
import json, re, statistics, sys, pathlib
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
def wall(t):
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + float(s)
def rss(t):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
rows = {}
for tool in ["kith", "splink", "rl"]:
    for d in ["febrl4", "febrl3"]:
        res = []
        for r in range(1, runs + 1):
            j, t = out / f"{tool}-{d}-{r}.json", out / f"{tool}-{d}-{r}.time"
            if not j.exists() or not t.exists() or not j.read_text().strip():
                continue
            txt = j.read_text()
            data = json.loads(txt[txt.index("{"):])
            f1 = data["f1"] if "f1" in data else data["ecm"]["f1"]  # recordlinkage nests it
            res.append((f1, data.get("cluster_f1"), wall(t.read_text()), rss(t.read_text())))
        if res:
            rows[(tool, d)] = (res[0][0], res[0][1], statistics.median(r[2] for r in res),
                               statistics.median(r[3] for r in res), len(res))
print("| tool | data | F1 | cluster F1 | seconds (whole process, median) | peak MiB | runs |")
print("|---|---|---|---|---|---|---|")
for (tool, d), (f1, cf1, s, m, n) in rows.items():
    cf = f"{cf1:.4f}" if cf1 is not None else "-"
    print(f"| {tool} | {d} | {f1:.4f} | {cf} | {s:.2f} | {m:.0f} | {n} |")
for d in ["febrl4", "febrl3"]:
    if ("kith", d) in rows and ("splink", d) in rows:
        k, sp = rows[("kith", d)], rows[("splink", d)]
        print(f"{d}: Splink/kith time {sp[2] / k[2]:.1f}x, memory {sp[3] / k[3]:.1f}x")
PY
