#!/usr/bin/env bash
# Runs on a GPU device machine (no network, no Node): unpacks the carried Node 22 + node_modules
# bundle and the Vulkan/EGL loaders, then times training steps on the webgpu backend (Dawn on the
# NVIDIA Vulkan driver) and the same U-Net shapes in PyTorch on the same GPU as the baseline.
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /opt/n && xz -dc .devbundle/node.xz > /opt/n/node && chmod +x /opt/n/node && export PATH=/opt/n:$PATH
tar -xJf .devbundle/nm.tar.xz
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
export XDG_RUNTIME_DIR=/tmp
timeout 330 node bench/device/webgpu-train.ts 2>&1 | tee "${OUT:-/tmp}/webgpu.txt"
timeout 150 python3 bench/device/torch_ref.py 2>&1 | tee "${OUT:-/tmp}/torch.txt"
