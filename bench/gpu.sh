#!/usr/bin/env bash
# The GPU checks in one run, under 8 minutes on one GPU: the CUDA tests, the quick and efficiency
# suites with --device cuda, and the scale bench on CUDA. Figures go to bench/results/gpu-*.json (or
# to $OUT where that is set), each naming the device.
#
# The machine needs the project's dependencies. Where it cannot reach PyPI, download them here first
# for its Python (e.g. 3.12) into .whl/ and they are installed from there:
#   python3 -m pip download --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \
#       -d .whl datasets foolbox captum fairlearn codecarbon imagecorruptions pydantic
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GIT_PYTHON_REFRESH=quiet
out=${OUT:-bench/results}
mkdir -p "$out"
python=${PYTHON:-python3}
if [ -d .whl ]; then
  "$python" -m pip install --quiet --no-index --find-links .whl --no-deps .whl/*.whl
fi
"$python" -m pip install --quiet --no-deps --no-build-isolation -e .
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
start=$(date +%s)
"$python" -m pytest -q -p no:cacheprovider tests/test_efficiency.py tests/test_stream.py -k "cuda or gpu or batches" \
  2>&1 | tee "$out/gpu-tests.log"
"$python" -m harness run --suite quick --device cuda --store "$store" --json > "$out/gpu-quick.json"
"$python" -m harness run --suite efficiency --device cuda --store "$store" --json > "$out/gpu-efficiency.json"
"$python" bench/scale.py --sizes 1000 10000 --device cuda --out "$out/gpu-scale.json"
echo "bench/gpu.sh: $(( $(date +%s) - start )) s"
