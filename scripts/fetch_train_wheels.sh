#!/usr/bin/env bash
# Download the wheels that scripts/train_on_device.sh installs on the GPU machine into .whl/.
# That machine (Python 3.12, torch + CUDA, numpy, OpenCV, pandas, matplotlib, ...) has no
# network and no ultralytics: these wheels travel with the run's `carry: [".whl"]` (~25 MB).
# Usage: bash scripts/fetch_train_wheels.sh   (needs pip and PyPI; run on this machine)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${DEST:-.whl}
PY=${PY:-python3}
mkdir -p "$DEST"

WHEELS=(
    ultralytics==8.3.185       # 8.3.19x+ import polars (54 MB) when saving checkpoints
    ultralytics-thop==2.2.3    # ultralytics' FLOPs counter, imported at model build
    onnx==1.17.0               # ultralytics' ONNX export wants onnx>=1.12,<1.18
    protobuf==7.36.2           # onnx's only dependency besides numpy
    click==8.1.7               # posebowl's CLI (same pins as pyproject.toml)
    rich==13.7.1
    markdown-it-py==4.3.0      # rich's dependencies
    mdurl==0.1.2
    pygments==2.21.0
    # Imported by ultralytics at start-up; pure Python, shadow any older copy harmlessly.
    requests==2.34.2
    urllib3==2.8.0
    idna==3.20
    certifi==2026.10.19.post1
    charset-normalizer==3.5.3
    tqdm==4.70.1
)
for spec in "${WHEELS[@]}"; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$DEST" "$spec"
done
ls -la "$DEST"
du -sh "$DEST"
