#!/usr/bin/env bash
# Creates (once) the separate virtualenv in which stock nnU-Net v2 runs, and prints its path.
#   bash scripts/nnunet_venv.sh       # venv at $NNUNET_VENV, default /tmp/nnunetv2-2.8.1-isles
#
# How and why it is installed this way:
# - nnunetv2 2.8.1 itself never imports torchvision, but its trainer lookup
#   (nnunetv2/utilities/find_objects.py) imports every module under nnunetv2/training/nnUNetTrainer before
#   it reads $nnUNet_extTrainer, the Primus trainers among them, which import timm (through
#   dynamic-network-architectures), which imports torchvision. So every trainer except the base
#   nnUNetTrainer, ours included, needs a torchvision that loads.
# - A torchvision wheel from PyPI (Linux x86_64) is built against the CUDA torch: next to a CPU torch its
#   extension does not load and `import torchvision` fails ("operator torchvision::nms does not exist";
#   measured with torch 2.13.0+cpu and torchvision 0.28.0). A CPU torchvision exists only on PyTorch's own
#   CPU wheel index, which this project's machines cannot reach.
# - Hence: torch first, pinned ($NNUNET_TORCH, default torch==2.14.1, the PyPI build, which also runs on a
#   CPU); then nnunetv2 with --no-deps; then its declared requirements, read from its own metadata, under a
#   constraint that holds the installed torch exactly, so pip picks the torchvision made for that torch and
#   never replaces it. Where PyTorch's CPU index is reachable, NNUNET_TORCH="torch==2.13.0 torchvision==0.28.0"
#   with PIP_EXTRA_INDEX_URL set to it gives a CPU-only venv.
# The venv is separate from the project's .venv, whose torch it never touches.
set -euo pipefail
venv=${NNUNET_VENV:-/tmp/nnunetv2-2.8.1-isles}
read -r -a torch_spec <<< "${NNUNET_TORCH:-torch==2.14.1}"
nnunet_spec=nnunetv2==2.8.1
py="$venv/bin/python"
ready="$venv/.isles_nnunet_ready"
if [ -f "$ready" ] && [ -x "$venv/bin/nnUNetv2_train" ]; then echo "$venv"; exit 0; fi
log="$venv.install.log"
fail() { echo "nnunet_venv: $1 failed (log: $log)" >&2; exit 1; }
: > "$log"
[ -x "$py" ] || "${PYTHON:-python3}" -m venv "$venv" >> "$log" 2>&1 || fail "python3 -m venv $venv"
"$py" -m pip install -q "${torch_spec[@]}" >> "$log" 2>&1 || fail "pip install ${torch_spec[*]}"
torch_version=$("$py" -c "import torch; print(torch.__version__)") || fail "import torch"
constraints="$venv/isles-constraints.txt"
# The public version: a wheel's local label (+cu130, +cpu) is not always in its file name, and pip keeps an
# installed torch that satisfies the constraint rather than swapping builds.
echo "torch==${torch_version%%+*}" > "$constraints"
"$py" -m pip install -q --no-deps "$nnunet_spec" >> "$log" 2>&1 || fail "pip install --no-deps $nnunet_spec"
# nnunetv2's own Requires-Dist without extras and without torch (already installed and held).
mapfile -t requirements < <("$py" - <<'EOF'
import re
from importlib.metadata import requires
for line in requires("nnunetv2") or []:
    name = re.match(r"[A-Za-z0-9._-]+", line).group(0)
    if ";" not in line and name.lower() != "torch":  # extras (dev, intel-macos) carry a marker
        print(line.strip())
EOF
) || fail "reading nnunetv2's requirements"
"$py" -m pip install -q -c "$constraints" "${requirements[@]}" >> "$log" 2>&1 || fail "pip install nnunetv2's requirements"
[ "$("$py" -c 'import torch; print(torch.__version__)')" = "$torch_version" ] || fail "keeping torch $torch_version"
"$py" -c "import nnunetv2, timm, torchvision" >> "$log" 2>&1 \
  || fail "import nnunetv2, timm, torchvision (a CUDA-built torchvision next to a CPU torch does not load)"
touch "$ready"
echo "$venv"
