#!/bin/sh
# Builds the wasm kernels from conv3d.c + ops.c with Debian's clang-19 + lld-19
# (apt-get install clang-19 lld-19; clang 19 is the first Debian clang with the final relaxed-SIMD
# opcodes, whose fused multiply-add the GEMM uses). Two builds of the same code:
#   kernels.wasm     shared, imported memory: worker threads run the same kernels on the same buffers
#                    (the trainer's tfjs kernels and the ONNX engine in Node);
#   kernels-st.wasm  plain imported memory, one thread (Cloudflare Workers, browsers without
#                    cross-origin isolation).
# Both are committed; shared/engine/wasm-build.test.ts rebuilds them and checks that the bytes match.
# Usage: build.sh [OUT_DIR] (default: this folder).
set -eu
cd "$(dirname "$0")"
OUT="${1:-.}"
CC="${CLANG:-clang-19}"
OBJDUMP="${LLVM_OBJDUMP:-llvm-objdump-19}"
COMMON="--target=wasm32 -O3 ${CFLAGS:-} -msimd128 -mrelaxed-simd -mbulk-memory -nostdlib -fno-builtin
  -ffile-prefix-map=$PWD=. -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all -Wl,-z,stack-size=65536"
# shellcheck disable=SC2086
"$CC" $COMMON -matomics -Wl,--shared-memory -Wl,--max-memory=4294967296 -o "$OUT/kernels.wasm" conv3d.c ops.c
# shellcheck disable=SC2086
"$CC" $COMMON -o "$OUT/kernels-st.wasm" conv3d.c ops.c
# Threads share one memory but each has its own copy of the stack pointer: the kernels must
# never touch the shadow stack (no global.get/set in the code), or threads would race on it.
if command -v "$OBJDUMP" >/dev/null && "$OBJDUMP" -d "$OUT/kernels.wasm" | grep -q 'global\.[gs]et'; then
  echo "build.sh: kernels.wasm uses the shadow stack; keep locals out of memory" >&2
  exit 1
fi
