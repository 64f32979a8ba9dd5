#!/usr/bin/env bash
# The GPU check, prepared for a rented CUDA machine; a few minutes in all:
#   1. the CUDA tests (pytest -k cuda): bf16 autocast training under torchrun
#      (nccl, SyncBatchNorm), and a seed giving the same images on CPU and CUDA;
#   2. one epoch of every family `python -m aigc.train` knows, on MNIST, on one
#      GPU, and under torchrun on all GPUs when there are several;
# then a table of images/s.
#
#   bash scripts/gpu_check.sh     # data: $AIGC_DATA_DIR, else ../shared/datasets, else ./data (downloads)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${AIGC_DATA_DIR:-}" ] && [ -d ../shared/datasets ]; then export AIGC_DATA_DIR=../shared/datasets; fi
export PYTHONWARNINGS=ignore
python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: nothing to check here")'
GPUS=$(python -c 'import torch; print(torch.cuda.device_count())')
python -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")'

echo "== 1. CUDA tests"
timeout 600 python -m pytest -q -rs -k cuda tests/

echo "== 2. one epoch of each family on MNIST"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
KINDS=$(python -c 'from aigc.families import FAMILIES; print(" ".join(FAMILIES))')
for kind in $KINDS; do
  echo "-- $kind, 1 GPU"
  timeout 600 python -m aigc.train "$kind" --dataset mnist --epochs 1 --device cuda --no-progress --out "$OUT/$kind-1"
  if [ "$GPUS" -gt 1 ]; then
    echo "-- $kind, torchrun on $GPUS GPUs"
    timeout 600 python -m torch.distributed.run --standalone --nproc_per_node="$GPUS" -m aigc.train "$kind" \
      --dataset mnist --epochs 1 --device cuda --no-progress --out "$OUT/$kind-$GPUS"
  fi
done

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import torch
print(f"\n{torch.cuda.get_device_name(0)}, torch {torch.__version__}: one epoch of MNIST (60,000 images), bf16 autocast\n")
print("| family | processes (GPUs) | global batch | epoch time | images/s | last-epoch numbers |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for run in sorted(Path(sys.argv[1]).iterdir(), key=lambda p: (p.name.rsplit("-", 1)[0], int(p.name.rsplit("-", 1)[1]))):
    row = json.loads((run / "history.jsonl").read_text().splitlines()[-1])
    meta = json.loads((run / "training.json").read_text())
    skip = {"epoch", "step", "device", "devices", "processes", "time", "epoch_time_s", "images_per_s"}
    numbers = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in skip and isinstance(v, (int, float)))
    print(f"| {meta['kind']} | {row.get('processes', 1)} | {meta['batch_size']} | {row['epoch_time_s']:.1f} s | "
          f"{row['images_per_s']:,.0f} | {numbers} |")
PY
