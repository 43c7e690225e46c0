#!/bin/sh
# Builds the libFuzzer targets in Fuzz/ (NetKernels' and Net's sources compiled with -sanitize=fuzzer,address) into
# .build-fuzz/, then runs each for FUZZ_SECONDS (default 60) from its seed corpus Fuzz/corpus/TARGET.
# New inputs the fuzzer finds go to .build-fuzz/corpus/TARGET, crashes to .build-fuzz/crashes/TARGET.
#   scripts/fuzz.sh                  build, then run every target
#   scripts/fuzz.sh build            build only
#   scripts/fuzz.sh run png jpeg     run the named targets (already built)
set -eu
cd "$(dirname "$0")/.."
SWIFTC=${SWIFTC:-swiftc}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-.build-fuzz}
TARGETS="png jpeg idx cifar safetensors npy spec onnx"
SANITIZE="-sanitize=fuzzer,address"
C_MODULES="-I Sources/COpenBLAS -I Sources/CPNG -I Sources/CJPEG -I Sources/CZlib $(pkg-config --cflags openblas libpng zlib | sed 's/-I/-Xcc -I/g')"
LIBS="$(pkg-config --libs openblas libpng zlib) -ljpeg"

build() {
    mkdir -p $OUT
    # shellcheck disable=SC2046,SC2086
    for module in NetKernels Net; do
        $SWIFTC -O -parse-as-library -enable-testing $SANITIZE -module-name $module -package-name deconvnet -swift-version 5 \
            $C_MODULES -I $OUT -emit-module -emit-module-path $OUT/$module.swiftmodule -emit-library -static -o $OUT/lib$module.a \
            $(find Sources/$module -name '*.swift' | sort)
    done
    for target in $TARGETS; do
        # shellcheck disable=SC2086
        $SWIFTC -O -parse-as-library $SANITIZE -swift-version 5 $C_MODULES -I $OUT \
            Fuzz/FuzzSupport.swift Fuzz/$target.swift $OUT/libNet.a $OUT/libNetKernels.a $LIBS -o $OUT/fuzz-$target
    done
}

run() {
    for target in "$@"; do
        mkdir -p $OUT/corpus/$target $OUT/crashes/$target
        echo "fuzz-$target: $FUZZ_SECONDS s"
        $OUT/fuzz-$target -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix=$OUT/crashes/$target/ $OUT/corpus/$target Fuzz/corpus/$target 2>&1 | tail -n 12
    done
}

case "${1:-all}" in
    build) build ;;
    run) shift; run "$@" ;;
    all) build; run $TARGETS ;;
    *) echo "usage: $0 [build | run TARGET... | all]" >&2; exit 64 ;;
esac
