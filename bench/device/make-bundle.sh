#!/usr/bin/env bash
# Usage: bench/device/make-bundle.sh, then run bench/device/run.sh on the device machine with carry [".gl", ".devbundle"].
# Builds a compact Node 22 + node_modules bundle (about 59 MB xz) for the GPU device machine, which has
# neither Node nor network. The Vulkan/EGL loaders go in .gl/ (see the device tool's README:
# apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2). Neither is committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .devbundle
rm -f .devbundle/nm.tar.xz .devbundle/node.xz
xz -T2 -6 -c node_modules/node/bin/node > .devbundle/node.xz
tar -C /work/main --exclude='node_modules/@pulumi' --exclude='node_modules/@aws-sdk' --exclude='node_modules/@smithy' \
  --exclude='node_modules/wrangler' --exclude='node_modules/workerd' --exclude='node_modules/@cloudflare' \
  --exclude='node_modules/miniflare' --exclude='node_modules/esbuild' --exclude='node_modules/@esbuild' \
  --exclude='node_modules/@biomejs' --exclude='node_modules/typescript' --exclude='node_modules/onnxruntime-node' \
  --exclude='node_modules/onnxruntime-web' --exclude='node_modules/node' --exclude='node_modules/@types' \
  --exclude='node_modules/webgpu/dist/darwin-universal' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/s3rver' --exclude='node_modules/@grpc' \
  --exclude='node_modules/protobufjs' --exclude='*.map' --exclude='node_modules/@tensorflow/*/dist/*.min.js' \
  --exclude='node_modules/@tensorflow/*/dist/*.es2017.js' --exclude='node_modules/@tensorflow/*/dist/*.fesm.js' \
  -cf - node_modules | xz -T2 -6 > .devbundle/nm.tar.xz
ls -la .devbundle
