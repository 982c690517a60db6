#!/usr/bin/env bash
# Download the wheels the GPU machine lacks into .whl/ (git-ignored), for the device tool's
# `carry: [".whl"]`; benchmarks/gpu_kit.sh installs them there with pip --no-index.
#
#   benchmarks/fetch_wheels.sh [PYTHON]      # PYTHON: any python with pip (default python3)
#
# The GPU machine runs CPython 3.12 on x86_64 with torch, numpy, timm, transformers, ... but no
# video decoders. Exactly one version of each package (two would stop the install there); the
# versions are the ones this repository is tested with, inside setup.cfg's install_requires.
# Their own dependencies: decord needs numpy (on the machine), av needs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
DEST=.whl
WHEELS=(decord==0.6.0 av==18.1.0)
LIMIT_MIB=56  # the device call carries at most 64 MiB, the repository included

mkdir -p "$DEST"
rm -f "$DEST"/*.whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${WHEELS[@]}"

count=$(ls "$DEST"/*.whl | wc -l)
if [ "$count" -ne "${#WHEELS[@]}" ]; then
    echo "expected ${#WHEELS[@]} wheels in $DEST, found $count" >&2
    exit 1
fi
ls -l "$DEST"/*.whl
total=$(du -cm "$DEST"/*.whl | tail -1 | cut -f1)
echo "total: ${total} MiB in $DEST (limit ${LIMIT_MIB} MiB so the repository still fits in 64)"
if [ "$total" -gt "$LIMIT_MIB" ]; then
    echo "the wheels are too large to carry" >&2
    exit 1
fi
