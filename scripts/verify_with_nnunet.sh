#!/usr/bin/env bash
# Checks that a converted dataset is acceptable to nnU-Net v2 itself (2.8.1), in its own virtualenv made by
# scripts/nnunet_venv.sh (see there why it is separate and how torch is held):
#   bash scripts/verify_with_nnunet.sh RAW_ROOT [DATASET_ID]
# RAW_ROOT holds DatasetXXX_*; nnU-Net's outputs go to a temporary folder.
set -euo pipefail
raw=$(cd "$1" && pwd); id=${2:-18}
venv=$(bash "$(dirname "$0")/nnunet_venv.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nnUNet_raw="$raw" nnUNet_preprocessed="$work/pre" nnUNet_results="$work/res" \
  "$venv/bin/nnUNetv2_plan_and_preprocess" -d "$id" --verify_dataset_integrity -c 2d -np 2
