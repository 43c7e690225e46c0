#!/bin/bash
# Re-runs issue 13's "What broke" list against a release build: one line per case with its exit code, its
# peak memory and the first line it wrote to stderr (the last stdout line when stderr is empty).
#   usage: scripts/hostile-inputs.sh [BINARY] [WORK]   (default .build/release/deconvnet, a fresh temporary folder)
# Needs python3 (standard library only) and /usr/share/datasets/fashion-mnist (make deps) for the training cases.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$here/.build/release/deconvnet}")
work=${2:-$(mktemp -d)}
mkdir -p "$work" && cd "$work" || exit 1
fashion=/usr/share/datasets/fashion-mnist
python3 "$here/scripts/hostile-inputs.py" in "$here/checkpoints/lenet5-fashion-mnist.safetensors" "$here/Fuzz/corpus/jpeg/tiny.jpg" || exit 1
checkpoint=$here/checkpoints/lenet5-fashion-mnist.safetensors
# Fashion-MNIST for the training cases, as a folder of symbolic links to its files (nothing is copied)
mkdir -p fashion && for f in "$fashion"/*; do ln -sf "$f" fashion/; done

# case NAME -- COMMAND...: runs COMMAND (timeout 300 s) and prints NAME, exit code, peak RSS, one line
case_() {
    local name=$1; shift; shift
    /usr/bin/time -f %M -o rss.txt timeout 300 "$@" >out.txt 2>err.txt
    local status=$?
    local line
    line=$(grep -v '^\s*$' err.txt | head -1)
    [ -n "$line" ] || line="(stdout) $(grep -v '^\s*$' out.txt | tail -1)"
    printf '%-58s exit %3s  %7s MB  %s\n' "$name" "$status" "$(( $(tail -1 rss.txt 2>/dev/null || echo 0) / 1024 ))" "$line" | cut -c1-400
}

echo "binary: $bin"
echo "== 1. memory, from sizes that come from outside"
case_ "predict: 1 KB JPEG declaring 60000x60000" -- "$bin" predict --checkpoint "$checkpoint" --image in/huge-header.jpg
case_ "predict: checkpoint declaring input [1,300,300]" -- "$bin" predict --checkpoint in/input-300.safetensors --image in/image.png
case_ "predict: checkpoint declaring input [1,2000,2000]" -- "$bin" predict --checkpoint in/input-2000.safetensors --image in/image.png
case_ "train --batch-size 1000000000" -- "$bin" train --data fashion --batch-size 1000000000 --steps 1 --run runs/b1
case_ "train --batch-size 9223372036854775807" -- "$bin" train --data fashion --batch-size 9223372036854775807 --steps 1 --run runs/b2
case_ "train --size 100000" -- "$bin" train --data fashion --size 100000 --steps 1 --run runs/s
case_ "summary --model conv:99999999:3,fc" -- "$bin" summary --model conv:99999999:3,fc
case_ "summary --model lstm --hidden 100000000" -- "$bin" summary --model lstm --hidden 100000000
case_ "train --batch-size 1000000 on 1000 images" -- "$bin" train --data in/small --batch-size 1000000 --steps 1 --no-logging --run runs/big-batch
case_ "train on 4000x4000 images without --size" -- "$bin" train --data in/big --model lenet5 --steps 1 --no-logging --run runs/4000
case_ "train on 4000x4000 images, --max-memory 2G" -- "$bin" train --data in/big --model lenet5 --steps 1 --no-logging --max-memory 2G --run runs/4000b
case_ "train on 4000x4000 images with --size 28" -- "$bin" train --data in/big --model lenet5 --size 28 --steps 1 --no-logging --run runs/4000s

echo "== 2. worker counts"
for w in 1 $(nproc) 256 1024 1025; do
    case_ "train --workers $w" -- "$bin" train --data fashion --model lenet5 --steps 2 --no-logging --workers "$w" --run "runs/w$w"
done

echo "== 3. two processes on one run directory"
"$bin" train --data fashion --model lenet5 --steps 200 --no-logging --run runs/shared >first.txt 2>&1 &
first=$!
sleep 0.5
case_ "second train on the same --run" -- "$bin" train --data fashion --model lenet5 --steps 1 --no-logging --run runs/shared
wait $first; echo "   (the first one ended with exit $?)"
"$bin" train --resume runs/shared/checkpoint.safetensors --epochs 1 --steps 300 --no-logging >first.txt 2>&1 &
first=$!
sleep 0.5
case_ "second --resume of the same run" -- "$bin" train --resume runs/shared/checkpoint.safetensors --epochs 1 --steps 301
wait $first; echo "   (the first one ended with exit $?)"

echo "== 4. divergence"
case_ "lenet5 --optimizer sgd --lr 1000" -- "$bin" train --data fashion --model lenet5 --optimizer sgd --lr 1000 --epochs 1 --steps 300 --no-logging --run runs/d1
case_ "lenet5-classic --optimizer sgd --lr 1000" -- "$bin" train --data fashion --model lenet5-classic --optimizer sgd --lr 1000 --epochs 1 --steps 300 --no-logging --run runs/d2
case_ "lenet5-classic tanh + mse --lr 1000" -- "$bin" train --data fashion --model lenet5-classic --activation tanh --loss mse --optimizer sgd --lr 1000 --epochs 1 --steps 300 --no-logging --run runs/d3
ls runs/d3 | tr '\n' ' ' | sed 's/^/   runs\/d3 keeps: /'; echo

echo "== 5. smaller ones"
case_ "predict: checkpoint with a NaN weight" -- "$bin" predict --checkpoint in/nan-weight.safetensors --image in/image.png
case_ "data: IDX label file with a label 255" -- "$bin" data in/label-255
case_ "train: IDX label file with a label 255" -- "$bin" train --data in/label-255 --steps 1 --run runs/l255
printf 'x' > runs/shared/.checkpoint.safetensors.tmp-99999-12345
"$bin" train --resume runs/shared/checkpoint.safetensors --epochs 1 --steps 302 --no-logging >/dev/null 2>&1
[ -e runs/shared/.checkpoint.safetensors.tmp-99999-12345 ] && echo "   the interrupted write's temporary file is still there" \
    || echo "   next start removed the temporary file an interrupted checkpoint write left"
printf '{"epoch":99,"images_per_s":1' >> runs/shared/metrics.jsonl
case_ "report on a run whose metrics end in a torn line" -- "$bin" report runs/shared --out report
case_ "compare on it" -- "$bin" compare runs/shared
case_ "resume it" -- "$bin" train --resume runs/shared/checkpoint.safetensors --epochs 1 --steps 303 --no-logging
tail -c 120 runs/shared/metrics.jsonl | tail -1 | cut -c1-100 | sed 's/^/   last metrics line: /'
mkdir -p dir.safetensors
case_ "predict: checkpoint path that is a directory" -- "$bin" predict --checkpoint dir.safetensors --image in/image.png
case_ "inspect --out below a regular file" -- "$bin" inspect --checkpoint "$checkpoint" --image in/image.png --out in/image.png/out
mkdir -p readonly && chmod 500 readonly
case_ "inspect --out in a read-only folder (root ignores modes)" -- "$bin" inspect --checkpoint "$checkpoint" --image in/image.png --out readonly/out
case_ "train --weight-decay nan" -- "$bin" train --data fashion --weight-decay nan --run runs/wd
case_ "train --lr nan" -- "$bin" train --data fashion --lr nan --run runs/lr
case_ "predict --top 0" -- "$bin" predict --checkpoint "$checkpoint" --image in/image.png --top 0
case_ "inspect --window 15 (help: at most half the side, 14)" -- "$bin" inspect --checkpoint "$checkpoint" --image in/image.png --window 15 --out insp
case_ "train --schedule step:0:0.5" -- "$bin" train --data fashion --schedule step:0:0.5 --run runs/sch
mkdir -p elsewhere
(cd elsewhere && "$bin" train --data ../fashion --model lenet5 --steps 1 --no-logging --run ../runs/relative >/dev/null 2>&1)
case_ "--resume of a run trained with a relative --data" -- "$bin" train --resume runs/relative/checkpoint.safetensors --epochs 1 --steps 2 --no-logging
case_ "data: class names with terminal escapes" -- "$bin" data in/escapes
grep -c $'\e' out.txt | sed 's/^/   escape bytes in its output lines: /'
case_ "predict: class names with terminal escapes" -- "$bin" predict --checkpoint in/escape-names.safetensors --image in/image.png
grep -c $'\e' out.txt | sed 's/^/   escape bytes in its output lines: /'
case_ "data: gzip IDX file that inflates to 1 GiB" -- "$bin" data in/gzip-bomb
case_ "data: the same with --max-memory 512M" -- "$bin" data in/gzip-bomb --max-memory 512M
echo "work folder: $work"
