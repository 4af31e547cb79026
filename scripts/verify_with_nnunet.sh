#!/usr/bin/env bash
# Checks that a converted dataset is acceptable to nnU-Net v2 itself (2.8.1), in a separate virtualenv:
# nnunetv2 depends on torchvision, which has no CPU build here and would replace the project's torch.
#   bash scripts/verify_with_nnunet.sh RAW_ROOT [DATASET_ID]
# RAW_ROOT holds DatasetXXX_*; nnU-Net's outputs go to a temporary folder.
set -euo pipefail
raw=$(cd "$1" && pwd); id=${2:-18}
venv=${NNUNET_VENV:-/tmp/nnunetv2-2.8.1}
[ -x "$venv/bin/nnUNetv2_plan_and_preprocess" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q nnunetv2==2.8.1; }
work=$(mktemp -d)
nnUNet_raw="$raw" nnUNet_preprocessed="$work/pre" nnUNet_results="$work/res" \
  "$venv/bin/nnUNetv2_plan_and_preprocess" -d "$id" --verify_dataset_integrity -c 2d -np 2
rm -rf "$work"
