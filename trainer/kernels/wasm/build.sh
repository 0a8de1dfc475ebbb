#!/bin/sh
# Builds conv3d.wasm from conv3d.c with Debian's clang + lld (apt-get install clang lld).
# The output is committed; trainer/kernels/wasm-build.test.ts rebuilds it and checks that the
# bytes match when the same clang major version is installed.
# Shared, imported memory so that worker threads can run the same kernels on the same buffers.
set -eu
cd "$(dirname "$0")"
OUT="${1:-conv3d.wasm}"
clang --target=wasm32 -O3 ${CFLAGS:-} -msimd128 -matomics -mbulk-memory -nostdlib -fno-builtin \
  -ffile-prefix-map="$PWD"=. \
  -Wl,--no-entry -Wl,--import-memory -Wl,--shared-memory -Wl,--max-memory=4294967296 \
  -Wl,--strip-all -Wl,-z,stack-size=65536 \
  -o "$OUT" conv3d.c
# Threads share one memory but each has its own copy of the stack pointer: the kernels must
# never touch the shadow stack (no global.get/set in the code), or threads would race on it.
if command -v llvm-objdump >/dev/null && llvm-objdump -d "$OUT" | grep -q 'global\.[gs]et'; then
  echo "build.sh: $OUT uses the shadow stack; keep locals out of memory" >&2
  exit 1
fi
