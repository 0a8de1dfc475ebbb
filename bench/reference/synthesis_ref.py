"""NumPy/SciPy reference of one FreeTumor synthesis (method section 2), the baseline of
`npm run bench -- synthesis`. Same procedure as shared/synthesis: ellipsoid, three elastic
deformations (3x3 control grid, cubic displacement, nearest resampling, as elasticdeform),
location by 5x5 slice erosion, paste into a canvas padded by 80 voxels, mask = canvas AND
label >= 1, whole-volume boundary blur sigma U(1, 2), texture sub-block, composition on organ
voxels, clip to [0, 1]. Textures are generated once (timed apart), like the reference's init.

Usage: python3 synthesis_ref.py IMAGE.f32 LABEL.u8 NX NY NZ REPS
(raw float32 / uint8 arrays in C order [nz, ny, nx]). Prints one JSON object (milliseconds).

Whole process (the baseline of `freetumor synthesize` timed as a process, same files):
python3 synthesis_ref.py whole CT.nii.gz LABEL.nii.gz OUTDIR ORGAN_IDS TUMOR_ID TYPE SEED
reads both NIfTI-1 files (gzip + NumPy: what nibabel does, without its import cost), reorients
to RAS, resamples to 1.5 mm (scipy.ndimage.zoom, grid_mode: image linear, label nearest),
windows [-175, 250], generates the texture (sigma 3/4, the volume's size + 1), places one tumor
of TYPE in the organ (ORGAN_IDS like 5 or 2+3), resamples the HU change and the tumor back to
the input grid, and writes OUTDIR/ct.nii.gz and label.nii.gz (gzip level 1, as nibabel) and
summary.json.
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


def read_nifti(path):
    """NIfTI-1 (.nii.gz) -> (header bytes, data [x, y, z] with scl applied when set, sform affine)."""
    import gzip
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    hdr = raw[:348]
    dims = np.frombuffer(hdr, "<i2", 8, 40)
    code = int(np.frombuffer(hdr, "<i2", 1, 70)[0])
    dtype = {2: "u1", 4: "<i2", 8: "<i4", 16: "<f4", 64: "<f8", 256: "i1", 512: "<u2", 768: "<u4"}[code]
    offset = int(np.frombuffer(hdr, "<f4", 1, 108)[0])
    slope, inter = np.frombuffer(hdr, "<f4", 2, 112)
    shape = tuple(int(d) for d in dims[1:4])
    data = np.frombuffer(raw, dtype, int(np.prod(shape)), offset).reshape(shape, order="F")
    if slope not in (0, 1) or inter != 0:
        data = data * slope + inter
    affine = np.eye(4)
    affine[:3] = np.frombuffer(hdr, "<f4", 12, 280).reshape(3, 4)
    return bytearray(raw[:offset]), data, affine


def write_nifti(path, header, data):
    import gzip
    header = bytearray(header)
    code = {np.dtype("uint8"): 2, np.dtype("int16"): 4, np.dtype("int32"): 8, np.dtype("float32"): 16}[data.dtype]
    header[70:72] = np.int16(code).tobytes()
    header[72:74] = np.int16(data.dtype.itemsize * 8).tobytes()
    header[112:120] = np.array([1, 0], "<f4").tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(bytes(header) + data.tobytes(order="F"), compresslevel=1, mtime=0))


def to_ras(data, affine):
    """Flips/permutes so that the axes run R, A, S (nibabel's as_closest_canonical, no rotation)."""
    rot = affine[:3, :3]
    axes = [int(np.argmax(np.abs(rot[:, c]))) for c in range(3)]
    order = [axes.index(r) for r in range(3)]
    data = np.transpose(data, order)
    for r in range(3):
        if rot[r, order[r]] < 0:
            data = np.flip(data, r)
    return data, order


def whole():
    ct_path, lab_path, out_dir, organ_ids, tumor_id, kind, seed = sys.argv[2:9]
    import os
    global rng
    rng = np.random.default_rng(int(seed))
    t0 = time.perf_counter()
    ct_hdr, ct, affine = read_nifti(ct_path)
    lab_hdr, lab, _ = read_nifti(lab_path)
    ct_ras, _ = to_ras(ct, affine)
    lab_ras, _ = to_ras(lab, affine)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    order = [int(np.argmax(np.abs(affine[:3, c]))) for c in range(3)]
    spacing = spacing[[order.index(r) for r in range(3)]]
    work_shape = [max(1, round(n * s / 1.5)) for n, s in zip(ct_ras.shape, spacing)]
    zoom = [w / n for w, n in zip(work_shape, ct_ras.shape)]
    image = ndimage.zoom(ct_ras.astype(np.float32), zoom, order=1, mode="nearest", grid_mode=True)
    label_full = ndimage.zoom(lab_ras, zoom, order=0, mode="nearest", grid_mode=True)
    ids = [int(x) for x in organ_ids.split("+")]
    label = np.isin(label_full, ids).astype(np.uint8)
    x = np.clip((image.astype(np.float64) + 175) / 425, 0, 1)
    texture = make_texture(tuple(s + 1 for s in label.shape), 3, 4)
    out, mask = synthesize(x, label, kind, texture)
    delta = (out - x) * 425
    back = [n / w for n, w in zip(ct_ras.shape, work_shape)]
    delta_in = ndimage.zoom(delta, back, order=1, mode="nearest", grid_mode=True)
    tumor_in = ndimage.zoom(mask * 1.0, back, order=1, mode="nearest", grid_mode=True) >= 0.5
    organ_in = np.isin(lab_ras, ids)
    new_ct = np.where(organ_in, np.round(ct_ras + delta_in), ct_ras).astype(ct.dtype)
    new_lab = np.where(organ_in & tumor_in, int(tumor_id), lab_ras).astype(lab.dtype)
    # The sample is RAS already; other orientations would be un-flipped here.
    os.makedirs(out_dir, exist_ok=True)
    write_nifti(os.path.join(out_dir, "ct.nii.gz"), ct_hdr, new_ct)
    write_nifti(os.path.join(out_dir, "label.nii.gz"), lab_hdr, new_lab)
    summary = {"type": kind, "tumorVoxels": int((organ_in & tumor_in).sum()),
               "seconds": time.perf_counter() - t0}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f)
    print(json.dumps(summary))


def main():
    if sys.argv[1] == "whole":
        return whole()
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
