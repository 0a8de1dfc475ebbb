"""Reads a DICOM-SEG back with pydicom (and highdicom when importable) for the DICOM-SEG tests.

Usage: read_seg.py SEG GRID.json OUT_RAW [SOURCE_FOLDER]. GRID: dims [nx, ny, nz] and affine_lps of the
grid the mask should land on. Each frame is placed by its own ImagePositionPatient (slice index from the
grid's geometry, in-plane offset checked to be zero) and ImageOrientationPatient (checked against the
grid); the voxels get the frame's segment number. Writes that label volume (uint8, i fastest) to OUT_RAW
and prints a JSON summary. With SOURCE_FOLDER, every frame's referenced SOP instance must be the source
slice at the frame's position.
"""
import json
import os
import sys

import numpy as np
import pydicom

seg_path, grid_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
source_dir = sys.argv[4] if len(sys.argv) > 4 else None
grid = json.load(open(grid_path))
nx, ny, nz = grid["dims"]
a = np.array(grid["affine_lps"], dtype=float).reshape(4, 4)
seg = pydicom.dcmread(seg_path)
assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4", seg.SOPClassUID
assert seg.Rows == ny and seg.Columns == nx, (seg.Rows, seg.Columns)
pixels = seg.pixel_array
if pixels.ndim == 2:
    pixels = pixels[None]
shared = seg.SharedFunctionalGroupsSequence[0]
iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
assert np.allclose(iop[:3] * spacing[1], a[:3, 0], atol=1e-4), "row direction"
assert np.allclose(iop[3:] * spacing[0], a[:3, 1], atol=1e-4), "column direction"
inv = np.linalg.inv(a)
by_position = {}
if source_dir:
    for name in os.listdir(source_dir):
        d = pydicom.dcmread(os.path.join(source_dir, name), stop_before_pixels=True)
        by_position[tuple(round(float(v), 3) for v in d.ImagePositionPatient)] = d.SOPInstanceUID
vol = np.zeros((nz, ny, nx), dtype=np.uint8)
frames = []
for n, f in enumerate(seg.PerFrameFunctionalGroupsSequence):
    ipp = np.array([float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient])
    ijk = inv @ np.append(ipp, 1.0)
    assert abs(ijk[0]) < 1e-3 and abs(ijk[1]) < 1e-3, ("frame origin off the grid", ijk)
    k = int(round(ijk[2]))
    assert abs(ijk[2] - k) < 1e-3 and 0 <= k < nz, ("frame between slices", ijk)
    number = int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    vol[k][pixels[n] > 0] = number
    ref = None
    if "DerivationImageSequence" in f:
        ref = f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
    if source_dir:
        assert ref == by_position[tuple(round(v, 3) for v in ipp)], "frame references the wrong source slice"
    frames.append({"segment": number, "k": k, "ref": ref})
vol.tofile(out)


def codes(item, name):
    seq = item.get(name)
    return [str(seq[0].CodeValue), str(seq[0].CodingSchemeDesignator), str(seq[0].CodeMeaning)] if seq else None


summary = {
    "frames": frames,
    "segments": [
        {
            "number": int(s.SegmentNumber),
            "label": str(s.SegmentLabel),
            "category": codes(s, "SegmentedPropertyCategoryCodeSequence"),
            "type": codes(s, "SegmentedPropertyTypeCodeSequence"),
            "region": codes(s, "AnatomicRegionSequence"),
            "lab": [int(v) for v in s.RecommendedDisplayCIELabValue],
        }
        for s in seg.SegmentSequence
    ],
    "study": str(seg.StudyInstanceUID),
    "series": str(seg.SeriesInstanceUID),
    "frameOfReference": str(seg.FrameOfReferenceUID),
    "patientName": str(seg.get("PatientName", "")),
    "patientId": str(seg.get("PatientID", "")),
    "referencedSeries": [str(r.SeriesInstanceUID) for r in seg.get("ReferencedSeriesSequence", [])],
    "referencedInstances": sum(len(r.ReferencedInstanceSequence) for r in seg.get("ReferencedSeriesSequence", [])),
    "highdicom": None,
}
if source_dir:
    # highdicom parses a SEG against the standard; run where it is importable (.ci/run: .cache/pydeps).
    try:
        import highdicom as hd
    except ImportError:
        hd = None
    if hd is not None:
        try:
            h = hd.seg.Segmentation.from_dataset(seg)
            summary["highdicom"] = {"segments": len(h.SegmentSequence), "frames": int(h.NumberOfFrames)}
        except Exception as e:  # reported, and the test fails on it
            summary["highdicom"] = {"error": "%s: %s" % (type(e).__name__, e)}
print(json.dumps(summary))
