"""NumPy/SciPy reference of one FreeTumor synthesis (method section 2), the baseline of
`npm run bench -- synthesis`. Same procedure as shared/synthesis: ellipsoid, three elastic
deformations (3x3 control grid, cubic displacement, nearest resampling, as elasticdeform),
location by 5x5 slice erosion, paste into a canvas padded by 80 voxels, mask = canvas AND
label >= 1, whole-volume boundary blur sigma U(1, 2), texture sub-block, composition on organ
voxels, clip to [0, 1]. Textures are generated once (timed apart), like the reference's init.

Usage: python3 synthesis_ref.py IMAGE.f32 LABEL.u8 NX NY NZ REPS
(raw float32 / uint8 arrays in C order [nz, ny, nx]). Prints one JSON object (milliseconds).
"""
import json
import sys
import time

import numpy as np
from scipy import ndimage

RADII = {"tiny": 4, "small": 8, "medium": 16, "large": 32}
rng = np.random.default_rng(0)


def ellipsoid(rx, ry, rz):
    x, y, z = np.ogrid[0:4 * rx, 0:4 * ry, 0:4 * rz]
    return (((x - 2 * rx) / rx) ** 2 + ((y - 2 * ry) / ry) ** 2 + ((z - 2 * rz) / rz) ** 2 < 1).astype(np.int8)


def deform(geo, sigma, axes):
    a, b = axes
    la, lb = geo.shape[a], geo.shape[b]
    disp = rng.standard_normal((2, 3, 3)) * sigma
    ca, cb = np.meshgrid(np.linspace(0, 2, la), np.linspace(0, 2, lb), indexing="ij")
    da = ndimage.map_coordinates(disp[0], [ca, cb], order=3, mode="mirror")
    db = ndimage.map_coordinates(disp[1], [ca, cb], order=3, mode="mirror")
    pa, pb = np.meshgrid(np.arange(la), np.arange(lb), indexing="ij")
    coords = [None, None, None]
    c = 3 - a - b
    shape = geo.shape
    full = np.indices(shape, dtype=np.float64)
    def spread(m):
        idx = [np.newaxis] * 3
        idx[a] = slice(None)
        idx[b] = slice(None)
        return np.broadcast_to(m[tuple(idx)] if a < b else m.T[tuple(idx)], shape)
    coords[a] = spread(pa + da)
    coords[b] = spread(pb + db)
    coords[c] = full[c]
    return ndimage.map_coordinates(geo, coords, order=0, mode="constant", cval=0)


def random_select(label):
    organ = label == 1
    zs = np.where(organ.any(axis=(0, 1)))[0]
    z0, z1 = zs[0], zs[-1]
    z = round(rng.uniform(0.3, 0.7) * (z1 - z0)) + z0
    sl = ndimage.binary_erosion(organ[:, :, z], structure=np.ones((5, 5)), border_value=1)
    xs, ys = np.nonzero(sl)
    if len(xs) == 0:
        return [0, 0, 0]
    n = rng.integers(len(xs))
    return [xs[n], ys[n], z]


def make_texture(shape, sa, sb):
    a = rng.random(shape)
    a2 = ndimage.gaussian_filter(a, sa)
    p = rng.uniform(0.19, 0.21) * (a2 - a2.min()) / (a2.max() - a2.min()) + rng.uniform(0.04, 0.06)
    b = (p > rng.random(shape)).astype(np.float64)
    b2 = ndimage.gaussian_filter(b, sb)
    m = b2[b2 > 0.12].mean()
    return np.clip(b2 * rng.uniform(0.5, 0.55) / m, 0, 1)


def synthesize(image, label, kind, texture):
    r0 = RADII[kind]
    lo, hi = int(0.75 * r0), int(1.25 * r0)
    canvas = np.zeros([s + 160 for s in label.shape], np.int8)
    rx, ry, rz = (int(rng.integers(lo, hi + 1)) for _ in range(3))
    sigma = {"tiny": rng.uniform(0.5, 1), "small": rng.integers(1, 3), "medium": rng.integers(3, 7),
             "large": rng.integers(5, 11)}[kind]
    geo = ellipsoid(rx, ry, rz)
    for axes in ((0, 1), (1, 2), (0, 2)):
        geo = deform(geo, sigma, axes)
    p = [c + 80 for c in random_select(label)]
    lo3 = [p[d] - geo.shape[d] // 2 for d in range(3)]
    canvas[lo3[0]:lo3[0] + geo.shape[0], lo3[1]:lo3[1] + geo.shape[1], lo3[2]:lo3[2] + geo.shape[2]] += geo
    mask = (canvas[80:-80, 80:-80, 80:-80] * label) >= 1
    blur = ndimage.gaussian_filter(mask * 1.0, rng.uniform(1, 2))
    st = [int(rng.integers(0, max(1, texture.shape[d] - label.shape[d]))) for d in range(3)]
    tex = texture[st[0]:st[0] + label.shape[0], st[1]:st[1] + label.shape[1], st[2]:st[2] + label.shape[2]]
    d = 0.2 + 0.5 * rng.random()
    out = np.where(label == 1, image - blur * d * tex, image)
    return np.clip(out, 0, 1), mask


def main():
    img_path, lab_path, nx, ny, nz, reps = sys.argv[1:7]
    nx, ny, nz, reps = int(nx), int(ny), int(nz), int(reps)
    # [nz, ny, nx] C order -> [x, y, z] as the reference indexes it (last axis axial).
    image = np.fromfile(img_path, np.float32).reshape(nz, ny, nx).transpose(2, 1, 0).astype(np.float64)
    label = np.fromfile(lab_path, np.uint8).reshape(nz, ny, nx).transpose(2, 1, 0)
    t0 = time.perf_counter()
    texture = make_texture(tuple(s + 1 for s in label.shape), 3, 4)
    result = {"textureMs": (time.perf_counter() - t0) * 1000, "types": {}, "voxels": {}, "drop": {}}
    for kind in RADII:
        times, voxels, drops = [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            out, mask = synthesize(image, label, kind, texture)
            times.append((time.perf_counter() - t0) * 1000)
            tumor = mask & (label == 1)
            voxels.append(int(tumor.sum()))
            if tumor.any():
                drops.append(float((image - out)[tumor].mean()))
        result["types"][kind] = sorted(times)[len(times) // 2]
        result["voxels"][kind] = float(np.median(voxels))
        result["drop"][kind] = float(np.mean(drops)) if drops else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
