#!/bin/bash
# Issue 19's speed figures at 224x224, side by side: alternating rounds of `deconvnet bench` and
# PyTorch / Captum (../shared/bench/torch_reference_224.py) on the same random torchvision weights.
#
#   scripts/bench-224.sh alexnet|vgg11 ROUNDS OUT_DIR
#
# Needs the release build (`swift build -c release`) and .venv (`make python-deps`). Exports the model
# to OUT_DIR/ARCH.onnx and imports it once (kept for later runs), then each round runs, one after the
# other: our projection of the issue's unit with the whole-model forward pass, PyTorch's forward pass,
# Captum's NeuronDeconvolution, our occlusion sweep (window 32, stride 16) and Captum's Occlusion. Every
# result is one JSON line in OUT_DIR/ARCH-rounds.jsonl, appended, so the medians printed at the end
# cover every round in that file (use a new OUT_DIR for a new build). The machines here are shared
# and noisy: quote the medians and ranges.
set -euo pipefail
export PYTHONWARNINGS=ignore  # Captum warns about hooks on every call
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { echo "usage: $0 alexnet|vgg11 ROUNDS OUT_DIR" >&2; exit 64; }
arch=$1 rounds=$2 out=$3
[[ $rounds =~ ^[1-9][0-9]{0,3}$ ]] || { echo "$0: ROUNDS must be a whole number from 1 to 9999, not '$rounds'" >&2; exit 64; }
case $arch in
  alexnet) layer=conv5 channel=173 position=6,6 occlusion_repeats=3 ;;
  vgg11) layer=conv8 channel=11 position=1,12 occlusion_repeats=2 ;;
  *) echo "$0: unknown model $arch (alexnet or vgg11)" >&2; exit 64 ;;
esac
bin=.build/release/deconvnet python=.venv/bin/python
reference=${REFERENCE:-../shared/bench/torch_reference_224.py}
for f in "$bin" "$python" "$reference"; do [ -e "$f" ] || { echo "$0: $f is missing" >&2; exit 69; }; done
mkdir -p "$out"
log=$out/$arch-rounds.jsonl checkpoint=$out/$arch.safetensors

# The reference script with torchvision's CUDA-built operator registrations stubbed out, as in
# Tests/python/onnx_reference.py (the PyPI wheel's nms fails to register against the CPU torch).
reference() {
  "$python" - "$@" <<EOF
import runpy, sys, types
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
sys.argv = ["$reference"] + sys.argv[1:]
runpy.run_path("$reference", run_name="__main__")
EOF
}

if [ ! -f "$checkpoint" ]; then
  reference export --arch "$arch" --onnx "$out/$arch.onnx" >/dev/null
  "$bin" import "$out/$arch.onnx" --out "$checkpoint" --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225
fi
for round in $(seq "$rounds"); do
  echo "{\"round\": $round}" >> "$log"
  "$bin" bench project --checkpoint "$checkpoint" --layer $layer --channel $channel --position $position \
    --projections 5 --repeats 5 --workers 2 --json | tail -1 >> "$log"
  reference forward --arch "$arch" | tail -1 >> "$log"
  reference deconv --arch "$arch" | tail -1 >> "$log"
  "$bin" bench occlusion --checkpoint "$checkpoint" --window 32 --stride 16 --repeats $occlusion_repeats --workers 2 --json | tail -1 >> "$log"
  reference occlusion --arch "$arch" --repeat $occlusion_repeats | tail -1 >> "$log"
done

"$python" - "$log" <<'EOF'
import json, statistics, sys
rounds = []
for line in open(sys.argv[1]):
    record = json.loads(line)
    if "round" in record:
        rounds.append({})
    else:
        rounds[-1][record["task"]] = record
# (name, our task and field, the reference's task and field, the bar)
figures = [("forward, whole model", "bench-project", "model_forward_ms", "forward", "ms", 1.5),
           ("projection of one unit", "bench-project", "ms_per_projection", "deconv", "ms_per_projection", 5),
           ("occlusion sweep", "bench-occlusion", "ms_per_image", "occlusion", "ms_per_image", 5)]
for name, ours, our_field, theirs, their_field, bar in figures:
    pairs = [(r[ours][our_field], r[theirs][their_field]) for r in rounds if ours in r and theirs in r]
    if not pairs:
        continue
    ratios = [t / o for o, t in pairs]
    print(f"{name}: {len(pairs)} rounds, ours {statistics.median(o for o, _ in pairs):.1f} ms, "
          f"reference {statistics.median(t for _, t in pairs):.1f} ms, ratio {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}x), {sum(r >= bar for r in ratios)} rounds at the bar ({bar}x)")
peaks = {task: max(r[task]["peak_rss_mib"] for r in rounds if task in r) for task in ("bench-project", "bench-occlusion")}
print(f"peak memory: projection {peaks['bench-project']:.0f} MiB, occlusion {peaks['bench-occlusion']:.0f} MiB")
EOF
