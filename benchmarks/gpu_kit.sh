#!/usr/bin/env bash
# Everything the first GPU session measures, in one command: install the carried wheels, record
# the machine, run the GPU suite, the CUDA tests (hot path, device augmentation), the data suite
# (when there is one) and the ViT-B frame study, each part under its own time limit (a part that
# fails or runs out of time never stops the others), then gather every result into $OUT and
# print a summary.
#
#   benchmarks/gpu_kit.sh            # on the GPU machine, from the repository root: < 8 minutes
#   benchmarks/gpu_kit.sh --dry-run  # the same steps on a CPU at toy size, no install (make test)
#
# OUT (default runs/gpu_kit or runs/gpu_kit-dry) receives 6 files, inside the device tool's limits
# (8 files, 16 MiB each): summary.md, kit.json (every part's numbers), kit.log (this console),
# gpu_suite.md, frame_study.png and kit_results.tar.gz (every part's output and log). The wheels
# come from benchmarks/fetch_wheels.sh; benchmarks/README.md ("GPU kit") has the device-tool call.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRY=0
case "${1:-}" in
  --dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: benchmarks/gpu_kit.sh [--dry-run]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
if [ "$DRY" = 1 ]; then OUT=${OUT:-$REPO/runs/gpu_kit-dry}; else OUT=${OUT:-$REPO/runs/gpu_kit}; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/videopeft-kit.XXXXXX")
mkdir -p "$WORK/logs"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 MPLBACKEND=Agg
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}

# Time limit of each part in seconds; on the GPU machine they add up to 470 (under 8 minutes).
# data: the data suite's `kit` size took 36 s on 2 shared cores here, 17 s of it writing the
# realistic videos, which 16 processes write in about the time of one 10 s 320p video (~8 s);
# synthetic writes its 64 videos with one process per core (14 s with one process here).
if [ "$DRY" = 1 ]; then
  T_INSTALL=0 T_ENV=60 T_GPU=300 T_TESTS=120 T_DATA=120 T_SYNTH=60 T_STUDY=300
  GPU_ARGS=(--device cpu --quick --peak-tflops 1 --threads 1)  # the suite's own CPU smoke size
  SYNTH_ARGS=(--videos 16 --size 32 --frames-range 16 20)
  STUDY_CONFIG=configs/synthetic/frame_study_gpu_dry.yaml
  DATA_ARGS=(--quick)
else
  T_INSTALL=30 T_ENV=30 T_GPU=200 T_TESTS=40 T_DATA=50 T_SYNTH=20 T_STUDY=100
  GPU_ARGS=()
  SYNTH_ARGS=(--videos 64 --size 240 --frames-range 16 32 --workers "$(nproc)")
  STUDY_CONFIG=configs/synthetic/frame_study_gpu.yaml
  DATA_ARGS=(--data-size kit)
fi
STUDY_FRAMES="[4,8,16]"
STUDY_METHODS="[adaptmlp,vpt,linear]"

part() {  # part NAME LIMIT CMD...: CMD under LIMIT seconds, output to the console and logs/NAME.log
  local name=$1 limit=$2 start rc status
  shift 2
  start=$(date +%s)
  echo "=== [$name] $* (limit ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/logs/$name.log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) status=ok ;;
    124 | 137) status="timeout after ${limit} s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(($(date +%s) - start))" "$*" >>"$WORK/parts.tsv"
  echo "=== [$name] $status, $(($(date +%s) - start)) s"
  [ "$rc" = 0 ]
}

skip() {  # skip NAME WHY
  printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$WORK/parts.tsv"
  echo "=== [$1] skipped: $2"
}

main() {
  local start=$SECONDS failed=0
  echo "GPU kit$([ "$DRY" = 1 ] && echo ' (dry run)'): repo $REPO, work $WORK, out $OUT"
  if [ "$DRY" = 1 ]; then
    skip install "dry run"
  elif ls .whl/*.whl >/dev/null 2>&1; then
    part install "$T_INSTALL" "$PY" -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl || failed=1
    export PYTHONPATH=$PYTHONPATH:$WORK/site
  else
    skip install "no .whl/*.whl (run benchmarks/fetch_wheels.sh, carry .whl): no decord/av"
    failed=1
  fi
  part env "$T_ENV" "$PY" -m benchmarks.kit env "$WORK/env.json" || failed=1

  local gpu_ok=1
  if [ "$DRY" = 0 ] && ! grep -q '"cuda_available": true' "$WORK/env.json" 2>/dev/null \
    && ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    gpu_ok=0
    failed=1
    for name in gpu tests data synthetic study; do skip "$name" "torch sees no CUDA device"; done
  fi
  if [ "$gpu_ok" = 1 ]; then
    # sections that would start in the last 45 s are skipped (the JSON is kept after each one)
    part gpu "$T_GPU" "$PY" -m benchmarks --suite gpu --profile --out "$WORK/gpu" \
      --time-budget $((T_GPU - 45)) "${GPU_ARGS[@]}" || failed=1
    part tests "$T_TESTS" "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs \
      tests/test_hot_path.py tests/test_data_randaugment.py tests/test_data_device_augment.py \
      || failed=1
    if "$PY" -m benchmarks --help 2>/dev/null | grep -Eq -- '--suite \{[^}]*data'; then
      part data "$T_DATA" "$PY" -m benchmarks --suite data --out "$WORK/data" \
        "${DATA_ARGS[@]}" || failed=1
    else
      skip data "python -m benchmarks has no data suite yet"
    fi
    if part synthetic "$T_SYNTH" "$PY" tools/make_synthetic.py --layout list --benchmark stripes \
      --num-classes 4 "${SYNTH_ARGS[@]}" --out "$WORK/stripes" --no-progress; then
      part study "$T_STUDY" "$PY" tools/frame_study.py "$STUDY_CONFIG" frames="$STUDY_FRAMES" \
        methods="$STUDY_METHODS" data.root="$WORK/stripes/videos" \
        data.annotation="$WORK/stripes/annotations" output_dir="$WORK/study" || failed=1
    else
      failed=1
      skip study "no synthetic videos"
    fi
  fi

  echo "=== [report] after $((SECONDS - start)) s"
  "$PY" -m benchmarks.kit report "$WORK" "$OUT" || failed=1
  cp "$WORK"/gpu/*.md "$OUT/gpu_suite.md" 2>/dev/null
  cp "$WORK/study/frame_study.png" "$OUT/" 2>/dev/null
  bundle
  rm -rf "$WORK"
  echo "GPU kit done in $((SECONDS - start)) s: $OUT ($(ls "$OUT" | tr '\n' ' '))"
  return $failed
}

bundle() {  # every part's output and log, without videos, wheels and weights, under 15 MiB
  local tarball=$OUT/kit_results.tar.gz
  local skip=(--exclude=./stripes --exclude=./site --exclude='*.pt' --exclude='*.safetensors')
  tar -czf "$tarball" -C "$WORK" "${skip[@]}" .
  if [ "$(du -m "$tarball" | cut -f1)" -gt 15 ]; then
    echo "bundle over 15 MiB: leaving the profiler trace out"
    tar -czf "$tarball" -C "$WORK" "${skip[@]}" --exclude='*trace.json.gz' .
  fi
}

main 2>&1 | tee "$OUT/kit.log"
exit "${PIPESTATUS[0]}"
