#!/usr/bin/env bash
# Accept rate of the generator + quality-control path of synthesize-dataset on phantoms, with a
# tiny baseline segmentor and a tiny generator trained here (`freetumor train`), 6 mm, 16^3 patches.
# Usage: bench/dataset/accept-rate.sh [WORK_DIR] ; prints summary.json of the QC run.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-$(mktemp -d)}
STEPS_SEG=${STEPS_SEG:-200}
STEPS_SYN=${STEPS_SYN:-100}
NODE=node_modules/.bin/node; [ -x "$NODE" ] || NODE=node
ft() { "$NODE" bin/freetumor.js "$@"; }
mkdir -p "$W"
ft phantom --out "$W/train" --cases 6 --seed 300 --spacing 6 --tumors liver:2 >/dev/null
ft phantom --out "$W/unlabeled" --cases 8 --seed 400 --spacing 6 >/dev/null
common='"seed": 0, "patchSize": 16, "casesPerStep": 2, "cropsPerCase": 2, "checkpointEvery": 50,
  "model": {"baseChannels": 4, "depth": 2},
  "data": {"datasets": [{"name": "ph", "format": "msd", "path": "'"$W/train"'", "organ": "liver",
           "labelMap": "freetumor"}], "spacing": [6, 6, 6], "validationCases": 0, "workers": 0}'
cat > "$W/seg.json" <<JSON
{"kind": "segmentation", "steps": $STEPS_SEG, $common,
 "optimizer": {"lr": 0.005, "warmupSteps": 4}, "segmentation": {"mode": "baseline"}}
JSON
cat > "$W/syn.json" <<JSON
{"kind": "synthesis", "steps": $STEPS_SYN, $common,
 "optimizer": {"lr": 0.0005}, "synthesis": {"segmentorRun": "$W/runs/seg", "sampleEvery": 0}}
JSON
ft train segmentation --config "$W/seg.json" --out "$W/runs/seg" --backend cpu >/dev/null
ft train synthesis --config "$W/syn.json" --out "$W/runs/syn" --backend cpu >/dev/null
ft export --run "$W/runs/seg" --out "$W/models" >/dev/null
ft export --run "$W/runs/syn" --out "$W/models" >/dev/null
t0=$(date +%s)
ft synthesize-dataset --data "$W/unlabeled" --out "$W/out" --generator "$W/models" --quality "$W/models" \
  --attempts 10 --workers 2 --json >/dev/null
echo "qc run: $(( $(date +%s) - t0 )) s" >&2
cat "$W/out/summary.json"
