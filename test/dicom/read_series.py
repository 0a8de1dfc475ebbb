"""An independent reader for the DICOM tests: pydicom parses, numpy builds the geometry.

Usage: read_series.py FOLDER OUT_RAW [SERIES_UID]. Sorts the slices along the normal of
ImageOrientationPatient, applies RescaleSlope / RescaleIntercept, writes the volume as float32
little-endian (i fastest) to OUT_RAW and prints {dims, affine_lps} (voxel -> LPS mm, row-major).
"""
import json
import os
import sys

import numpy as np
import pydicom

folder, out = sys.argv[1], sys.argv[2]
wanted = sys.argv[3] if len(sys.argv) > 3 else None
slices = []
for root, _, names in os.walk(folder):
    for name in names:
        ds = pydicom.dcmread(os.path.join(root, name))
        if wanted and ds.SeriesInstanceUID != wanted:
            continue
        slices.append(ds)
iop = np.array([float(v) for v in slices[0].ImageOrientationPatient])
row, col = iop[:3], iop[3:]
normal = np.cross(row, col)
slices.sort(key=lambda d: float(np.dot([float(v) for v in d.ImagePositionPatient], normal)))
p0 = np.array([float(v) for v in slices[0].ImagePositionPatient])
pn = np.array([float(v) for v in slices[-1].ImagePositionPatient])
step = (pn - p0) / (len(slices) - 1)
dr, dc = (float(v) for v in slices[0].PixelSpacing)
affine = np.eye(4)
affine[:3, 0] = row * dc
affine[:3, 1] = col * dr
affine[:3, 2] = step
affine[:3, 3] = p0
vol = np.stack(
    [d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices]
)
vol.astype("<f4").tofile(out)
print(json.dumps({"dims": [int(slices[0].Columns), int(slices[0].Rows), len(slices)], "affine_lps": affine.ravel().tolist()}))
