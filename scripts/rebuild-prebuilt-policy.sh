#!/usr/bin/env bash
# Rebuild the prebuilt policy after the shipped space changed: record demonstrations with the space's encoders,
# train the policy (one CPU thread, about 30 minutes) and evaluate it on seeds the demonstrations never used.
# Writes xlhand/policy/weights/default.safetensors and default.eval.json; every prebuilt bundle made afterwards
# (`xlhand bundle create --prebuilt`, `xlhand onboard ... --bundle NEW`) carries them. Resumable: rerun it.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
work="${1:-runs/prebuilt}"
hands=inspire,xhand,ability,paxini
xlhand sim demos --hands "$hands" --episodes 40 -o "$work/demos"
data=$(echo "$hands" | tr ',' '\n' | sed "s|^|$work/demos/|" | paste -sd,)
OMP_NUM_THREADS=1 xlhand policy train --data "$data" -o "$work/policy.safetensors" --resume
OMP_NUM_THREADS=1 xlhand policy eval --policy "$work/policy.safetensors" --episodes 10 --seed 1000 --json \
  > "$work/eval.json"
cp "$work/policy.safetensors" xlhand/policy/weights/default.safetensors
cp "$work/eval.json" xlhand/policy/weights/default.eval.json
echo "rebuilt xlhand/policy/weights/default.safetensors ($(python -c "import json;print(json.load(open('$work/eval.json'))['mean'])") mean success)"
