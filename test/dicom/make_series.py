"""Writes a CT series with pydicom (an implementation independent of ours) for the DICOM tests.

Usage: make_series.py SPEC.json. SPEC: raw (int16 little-endian voxels, i fastest), dims [nx, ny, nz],
affine_lps (16 numbers, row-major, voxel -> LPS mm), out (folder), and options: syntax (implicit,
explicit, deflated, rle, jpeg-lossless, jpeg-ls, jpeg2000), stored (int16 | uint16), intercept, slope,
file_order (sorted | reversed | shuffled), tilt_mm (shift per slice along the column cosine), drop_slice,
series_uid, study_uid, modality, first_file (index for file names), label_syntax (a UID to label
encapsulated native bytes with), pad_bytes (a private element of that size before the pixel data). Slice k of the series is voxel plane k; pixel (row r, column c) is
voxel (c, r, k). Works with pydicom 2.3 (Debian) and 3.x; the JPEG family is transcoded with GDCM (python3-gdcm).
"""
import json
import os
import random
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

V3 = int(pydicom.__version__.split(".")[0]) >= 3
SYNTAX = {
    "implicit": "1.2.840.10008.1.2",
    "explicit": "1.2.840.10008.1.2.1",
    "deflated": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
}


def ds_str(x):
    s = "%.10g" % x
    return "0" if s == "-0" else s


def write(ds, path, implicit):
    if V3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.is_little_endian = True
        ds.is_implicit_VR = implicit
        ds.save_as(path, write_like_original=False)


def gdcm_transcode(path, name):
    import gdcm

    ts = {
        "jpeg-lossless": gdcm.TransferSyntax.JPEGLosslessProcess14_1,
        "jpeg-ls": gdcm.TransferSyntax.JPEGLSLossless,
        "jpeg2000": gdcm.TransferSyntax.JPEG2000Lossless,
    }[name]
    reader = gdcm.ImageReader()
    reader.SetFileName(path)
    if not reader.Read():
        raise SystemExit("gdcm cannot read " + path)
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(ts))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise SystemExit("gdcm cannot transcode to " + name)
    writer = gdcm.ImageWriter()
    writer.SetFileName(path)
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise SystemExit("gdcm cannot write " + path)


def main():
    spec = json.load(open(sys.argv[1]))
    nx, ny, nz = spec["dims"]
    vol = np.fromfile(spec["raw"], dtype="<i2").reshape((nz, ny, nx))  # [k, j, i]
    a = np.array(spec["affine_lps"], dtype=float).reshape(4, 4)
    col_i, col_j = a[:3, 0], a[:3, 1]
    sx, sy = np.linalg.norm(col_i), np.linalg.norm(col_j)
    iop = list(col_i / sx) + list(col_j / sy)
    syntax = spec.get("syntax", "explicit")
    stored = spec.get("stored", "int16")
    slope = float(spec.get("slope", 1))
    intercept = float(spec.get("intercept", 0 if stored == "int16" else -1024))
    study = spec.get("study_uid") or generate_uid()
    series = spec.get("series_uid") or generate_uid()
    frame_of_ref = spec.get("frame_of_reference_uid") or generate_uid()
    tilt = float(spec.get("tilt_mm", 0))
    drop = spec.get("drop_slice")
    os.makedirs(spec["out"], exist_ok=True)
    ks = [k for k in range(nz) if k != drop]
    order = list(ks)
    if spec.get("file_order") == "reversed":
        order.reverse()
    elif spec.get("file_order") == "shuffled":
        random.Random(7).shuffle(order)
    first = int(spec.get("first_file", 0))
    for n, k in enumerate(order):
        values = (vol[k].astype(np.float64) - intercept) / slope
        if stored == "int16":
            pixels = np.round(values).astype("<i2")
        else:
            pixels = np.round(values).astype("<u2")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = SYNTAX.get(syntax, SYNTAX["explicit"])
        meta.ImplementationClassUID = generate_uid()
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame_of_ref
        ds.Modality = spec.get("modality", "CT")
        ds.PatientName = spec.get("patient_name", "Test^Patient")
        ds.PatientID = spec.get("patient_id", "TEST-0001")
        ds.PatientBirthDate = spec.get("birth_date", "19700101")
        ds.PatientSex = "O"
        ds.StudyDate = "20240102"
        ds.StudyTime = "101010"
        ds.AccessionNumber = "ACC-TEST"
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.InstanceNumber = n + 1  # file order, deliberately not slice order
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        pos = a[:3, :3] @ np.array([0.0, 0.0, float(k)]) + a[:3, 3] + col_j / sy * tilt * k
        ds.ImagePositionPatient = [ds_str(v) for v in pos]
        ds.ImageOrientationPatient = [ds_str(v) for v in iop]
        ds.PixelSpacing = [ds_str(sy), ds_str(sx)]
        ds.SliceThickness = ds_str(abs(a[2, 2]) if abs(a[2, 2]) > 0 else 1)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if stored == "int16" else 0
        ds.RescaleIntercept = ds_str(intercept)
        ds.RescaleSlope = ds_str(slope)
        ds.RescaleType = "HU"
        ds.PixelData = pixels.tobytes()
        if spec.get("pad_bytes"):
            # A private element that pushes the pixel data past the reader's 64 KiB head.
            ds.add_new(0x00090010, "LO", "FREETUMOR TEST")
            ds.add_new(0x00091001, "OB", bytes(int(spec["pad_bytes"])))
        path = os.path.join(spec["out"], "IM%05d.dcm" % (first + n))
        if spec.get("label_syntax"):
            # Native bytes, encapsulated and labelled with a syntax the reader must refuse unread.
            from pydicom.encaps import encapsulate

            meta.TransferSyntaxUID = spec["label_syntax"]
            ds.PixelData = encapsulate([pixels.tobytes()])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
            write(ds, path, False)
        elif syntax == "rle":
            meta.TransferSyntaxUID = SYNTAX["explicit"]
            from pydicom.uid import RLELossless

            ds.compress(RLELossless, pixels)
            write(ds, path, False)
        else:
            write(ds, path, syntax == "implicit")
            if syntax in ("jpeg-lossless", "jpeg-ls", "jpeg2000"):
                gdcm_transcode(path, syntax)


main()
