#!/bin/sh
# Writes one of every figure deconvnet draws into OUT, for a person to look at:
#   scripts/all-figures.sh OUT [BIN]
# with the committed Fashion-MNIST LeNet5 (checkpoints/lenet5-fashion-mnist.safetensors) and Debian's
# Fashion-MNIST; a tiny model trained for three epochs gives the evolution figure and the training
# report; a made-up data set whose classes have 40-character and non-ASCII names gives the figures
# that show class names. PNGs and SVGs land in OUT; the HTML pages are screenshotted to PNG with
# headless Chromium when it is installed. BIN defaults to the release build.
set -eu
OUT=${1:?usage: scripts/all-figures.sh OUT [BIN]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${2:-$ROOT/.build/release/deconvnet}
C=$ROOT/checkpoints/lenet5-fashion-mnist.safetensors
D=${FASHION:-/usr/share/datasets/fashion-mnist}
mkdir -p "$OUT"
run() { echo "+ deconvnet $*" >&2; "$BIN" "$@" >/dev/null; }

# Figure 2: top 9 for 16 conv2 channels, and one channel alone; SVG too
run top --checkpoint "$C" --data "$D" --layer conv2 --channels 0-15 --k 9 --out "$OUT/top"
cp "$OUT/top/overview.png" "$OUT/top-overview.png"; cp "$OUT/top/channel-03.png" "$OUT/top-channel.png"
run top --checkpoint "$C" --data "$D" --layer conv1 --channels 0-7 --k 4 --format svg --out "$OUT/top-svg"
cp "$OUT/top-svg/overview.svg" "$OUT/top-overview.svg"
# one projection, at the usual size and twice as large, and as SVG
run project --checkpoint "$C" --data "$D" --index 23 --layer conv2 --out "$OUT/project.png"
run project --checkpoint "$C" --data "$D" --index 23 --layer pool2 --method guided --scale 2 --out "$OUT/project-scale2.png"
run project --checkpoint "$C" --data "$D" --index 23 --layer conv2 --format svg --out "$OUT/project.svg"
# filters, feature maps of one image and of several
run filters --checkpoint "$C" --out "$OUT/filters.png"
run featuremaps --checkpoint "$C" --data "$D" --index 0 --layer conv2 --out "$OUT/featuremaps.png"
run featuremaps --checkpoint "$C" --data "$D" --images 4 --layer conv1 --out "$OUT/featuremaps-images.png"
# Figure 7: the four occlusion figures
run occlude --checkpoint "$C" --data "$D" --index 23 --out "$OUT/occlude"
for f in class-score feature-activity most-probable-class attribution; do cp "$OUT/occlude/$f.png" "$OUT/occlude-$f.png"; done
run occlude --checkpoint "$C" --data "$D" --index 23 --format svg --out "$OUT/occlude-svg"
cp "$OUT/occlude-svg/class-score.svg" "$OUT/occlude-class-score.svg"
# Figure 5 (an SVG chart)
run invariance --checkpoint "$C" --data "$D" --index 0 --transform rotate --out "$OUT/invariance"
cp "$OUT/invariance/invariance.svg" "$OUT/invariance.svg"
# the inspect page
run inspect --checkpoint "$C" --data "$D" --index 23 --out "$OUT/inspect"

# Figure 4 and the training report: a small model, three epochs, a checkpoint each
run train --data "$D" --model conv:8:5:same,maxpool:2,conv:16:5:same,maxpool:2,fc --epochs 3 --save-every 1 --run "$OUT/run"
run evolution --checkpoints "$OUT"/run/checkpoints/epoch-1.safetensors "$OUT"/run/checkpoints/epoch-2.safetensors "$OUT"/run/checkpoints/epoch-3.safetensors \
    --data "$D" --layer conv2 --out "$OUT/evolution"
cp "$OUT/evolution/evolution.png" "$OUT/evolution.png"
run report "$OUT/run" --out "$OUT/report"

# Class names of 40 characters and outside ASCII: a made-up data set of class folders
python3 "$ROOT/scripts/long-names-data.py" "$OUT/names-data"
run train --data "$OUT/names-data" --model conv:8:3:same,maxpool:2,conv:12:3:same,maxpool:2,fc --epochs 2 --batch-size 16 --run "$OUT/names-run"
N=$OUT/names-run/checkpoint.safetensors
run top --checkpoint "$N" --data "$OUT/names-data" --layer conv2 --channels 0-11 --k 9 --out "$OUT/names-top"
cp "$OUT/names-top/channel-00.png" "$OUT/names-top-channel.png"; cp "$OUT/names-top/overview.png" "$OUT/names-top-overview.png"
run occlude --checkpoint "$N" --data "$OUT/names-data" --index 3 --window 4 --out "$OUT/names-occlude"
cp "$OUT/names-occlude/most-probable-class.png" "$OUT/names-most-probable-class.png"; cp "$OUT/names-occlude/class-score.png" "$OUT/names-class-score.png"
run featuremaps --checkpoint "$N" --data "$OUT/names-data" --images 3 --layer conv2 --out "$OUT/names-featuremaps.png"
run inspect --checkpoint "$N" --data "$OUT/names-data" --index 3 --out "$OUT/names-inspect"
# 256 channels: an untrained wide model
run train --data "$OUT/names-data" --model conv:256:3:same,maxpool:2,fc --steps 1 --batch-size 4 --run "$OUT/wide-run"
run featuremaps --checkpoint "$OUT/wide-run/checkpoint.safetensors" --data "$OUT/names-data" --index 0 --layer conv1 --out "$OUT/wide-featuremaps.png"
run filters --checkpoint "$OUT/wide-run/checkpoint.safetensors" --out "$OUT/wide-filters.png"

# SVGs and pages as PNG, to look at beside the rest
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROME" ]; then
  shot() { "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$3" --screenshot="$2" "file://$1" >/dev/null 2>&1; }
  for svg in "$OUT"/*.svg; do
    size=$(sed -n 's/^<svg[^>]* width="\([0-9]*\)" height="\([0-9]*\)".*/\1,\2/p' "$svg" | head -1)
    shot "$svg" "${svg%.svg}.svg.png" "${size:-1400,900}"
  done
  shot "$OUT/inspect/index.html" "$OUT/inspect-page.png" 1280,3200
  shot "$OUT/names-inspect/index.html" "$OUT/names-inspect-page.png" 1280,3200
  shot "$OUT/report/index.html" "$OUT/report-page.png" 1280,2400
fi
ls "$OUT"
