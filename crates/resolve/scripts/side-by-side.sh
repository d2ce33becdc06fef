#!/usr/bin/env bash
# kith beside the peers (Splink, recordlinkage) on the FEBRL sets and on
# gen_scale's populations: every tool a whole process under /usr/bin/time -v,
# the runs interleaved so that they share the machine's conditions, and the
# side-by-side table printed at the end (medians of the runs).
#
#   crates/resolve/scripts/side-by-side.sh [RUNS]        # default 3
#
#   SCALE_SIZES="200000 1000000"  gen_scale populations to resolve ("" for none);
#                                 missing ones are generated into $SCALE_DATA
#   PEERS_SCALE=run|quote         run Splink on them (default; 1,000,000 records
#                                 take it over two minutes and 4 GiB a run), or
#                                 quote its figures from shared/peers/README.md,
#                                 marked "quoted" in the table
#   SKIP_PEERS=1                  kith alone
#   KITH_BEFORE=PATH              also run another build of the febrl example (an
#                                 earlier commit's) in the same interleaved runs, as
#                                 "kith, earlier build": before and after under one load
#   PEERS_PY                      the peers' python (default /tmp/peers-venv/bin/python;
#                                 set up as shared/peers/README.md says)
#   CARGO_TARGET_DIR              where kith is built (default target/)
set -euo pipefail
runs=${1:-3}
here=$(cd "$(dirname "$0")/../../.." && pwd)
peers=${PEERS_DIR:-$here/../shared/peers}
py=${PEERS_PY:-/tmp/peers-venv/bin/python}
data=${SCALE_DATA:-/tmp/kith-scale-data}
sizes=${SCALE_SIZES-200000 1000000}
peers_scale=${PEERS_SCALE:-run}
target=${CARGO_TARGET_DIR:-$here/target}
out=$(mktemp -d)
cargo build --release -q -p kith-resolve --example febrl --example scale --manifest-path "$here/Cargo.toml"
kith=$target/release/examples

for n in $sizes; do
  if [ ! -f "$data/scale_$n.csv" ]; then
    echo "generating gen_scale --n $n into $data" >&2
    (cd "$peers" && SCALE_DATA="$data" "$py" gen_scale.py --n "$n" >&2)
  fi
done

timed() { # name, command...
  local name=$1; shift
  /usr/bin/time -v "$@" >"$out/$name.json" 2>"$out/$name.time"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$runs"); do
  echo "run $r of $runs" >&2
  for d in febrl4 febrl3; do
    timed "kith-$d-$r" "$kith/febrl" --dataset "$d"
    if [ -n "${KITH_BEFORE:-}" ]; then
      timed "before-$d-$r" "$KITH_BEFORE" --dataset "$d"
    fi
    if [ -z "${SKIP_PEERS:-}" ]; then
      (cd "$peers" && timed "splink-$d-$r" "$py" splink_febrl.py --dataset "$d" --model full --u-max-pairs 1e6 --quiet)
    fi
  done
  if [ -z "${SKIP_PEERS:-}" ]; then
    (cd "$peers" && timed "rl-febrl4-$r" "$py" rl_febrl.py --dataset febrl4)
  fi
  for n in $sizes; do
    timed "kith-scale_$n-$r" "$kith/scale" --n "$n" --data "$data"
    if [ -z "${SKIP_PEERS:-}" ] && [ "$peers_scale" = run ]; then
      (cd "$peers" && SCALE_DATA="$data" timed "splink-scale_$n-$r" "$py" splink_scale.py --n "$n" --quiet)
    fi
  done
done

echo "load average (1, 5, 15 min) before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
python3 - "$out" "$runs" "$sizes" "$peers_scale" "${SKIP_PEERS:-}" <<'PY'
import json, re, statistics, sys, pathlib
out, runs, sizes, peers_scale, skip = (pathlib.Path(sys.argv[1]), int(sys.argv[2]),
                                       sys.argv[3].split(), sys.argv[4], sys.argv[5])
def wall(t):
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", t)
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + float(s)
def rss(t):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
datasets = ["febrl4", "febrl3"] + [f"scale_{n}" for n in sizes]
names = {"kith": "kith", "before": "kith, earlier build (KITH_BEFORE)",
         "splink": "Splink, full model", "rl": "recordlinkage 0.16, ECM"}
tools = ["kith", "before", "splink", "rl"]
rows = {}
for tool in tools:
    for d in datasets:
        res = []
        for r in range(1, runs + 1):
            j, t = out / f"{tool}-{d}-{r}.json", out / f"{tool}-{d}-{r}.time"
            if not j.exists() or not t.exists() or not j.read_text().strip():
                continue
            txt = j.read_text()
            try:
                data = json.loads(txt[txt.index("{"):])
            except ValueError:
                continue
            data = data.get("ecm", data)  # recordlinkage nests its figures
            res.append(dict(f1=data["f1"], cf1=data.get("cluster_f1"), p=data["precision"],
                            r=data["recall"], wall=wall(t.read_text()), pipe=data.get("pipeline_s"),
                            rss=rss(t.read_text())))
        if res:
            med = lambda k: statistics.median(x[k] for x in res if x[k] is not None) \
                if any(x[k] is not None for x in res) else None
            rows[(tool, d)] = dict(res[0], wall=med("wall"), pipe=med("pipe"), rss=med("rss"),
                                   n=len(res), quoted=False)
# Splink's scale figures from shared/peers/README.md (pipeline seconds, median of 3),
# for when running it here would take too long.
quoted = {"scale_200000": dict(f1=0.9870, cf1=0.9957, pipe=42.4, rss=635),
          "scale_1000000": dict(f1=0.9912, cf1=0.9971, pipe=132.9, rss=4355)}
if not skip and peers_scale != "run":
    for d, q in quoted.items():
        if d in datasets:
            rows[("splink", d)] = dict(f1=q["f1"], cf1=q["cf1"], p=None, r=None, wall=None,
                                       pipe=q["pipe"], rss=q["rss"], n=3, quoted=True)
fmt = lambda v, f: "–" if v is None else format(v, f)
print("| tool | data | pairwise F1 | precision | recall | cluster F1 | seconds, whole process | seconds, pipeline | peak MiB | runs |")
print("|---|---|---|---|---|---|---|---|---|---|")
for d in datasets:
    for tool in tools:
        x = rows.get((tool, d))
        if not x:
            continue
        note = " (quoted from shared/peers/README.md, not run here)" if x["quoted"] else ""
        print(f"| {names[tool]}{note} | {d} | {x['f1']:.4f} | {fmt(x['p'], '.4f')} | {fmt(x['r'], '.4f')} "
              f"| {fmt(x['cf1'], '.4f')} | {fmt(x['wall'], '.2f')} | {fmt(x['pipe'], '.2f')} "
              f"| {x['rss']:.0f} | {x['n']} |")
print()
for d in datasets:
    for kt, label in [("kith", "kith"), ("before", "kith, earlier build")]:
        k, s = rows.get((kt, d)), rows.get(("splink", d))
        if not (k and s):
            continue
        if s["quoted"]:
            print(f"{d}: Splink (quoted) / {label}, pipeline time {s['pipe'] / k['pipe']:.1f}x, "
                  f"peak memory {s['rss'] / k['rss']:.1f}x")
        else:
            print(f"{d}: Splink / {label}, whole-process time {s['wall'] / k['wall']:.1f}x, "
                  f"pipeline time {s['pipe'] / k['pipe']:.1f}x, peak memory {s['rss'] / k['rss']:.1f}x")
PY
