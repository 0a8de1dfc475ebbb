import { describe, expect, it } from 'vitest';
import { applyReorientation, reorientationTo } from '../geometry/orientation.ts';
import { makeVolume } from '../volume/volume.ts';
import { itkSnapLabels, labelTablePaths, slicerColorTable } from './label-tables.ts';
import { renderSegmentPreview } from './preview.ts';
import { segmentationStatistics, segmentationStatisticsSchema } from './statistics.ts';
import { maskStructures } from './structures.ts';

const structures = maskStructures(['background', 'organ', 'tumor'], 'kidney');
// 10 x 8 x 6 RAS grid, 2 x 2 x 3 mm voxels (0.012 ml).
const dims: [number, number, number] = [10, 8, 6];
const affine = Float64Array.of(2, 0, 0, -10, 0, 2, 0, -8, 0, 0, 3, 0, 0, 0, 0, 1);

function grid(f: (i: number, j: number, k: number) => number, type: 'uint8' | 'int16') {
  const n = dims[0] * dims[1] * dims[2];
  const data = type === 'uint8' ? new Uint8Array(n) : new Int16Array(n);
  for (let v = 0; v < n; v++) data[v] = f(v % 10, Math.floor(v / 10) % 8, Math.floor(v / 80));
  return makeVolume(dims, data, affine, type);
}

describe('segmentation outputs', () => {
  it('structures carry SNOMED codes; tumors their organ as region', () => {
    expect(structures.map((s) => [s.classId, s.name, s.type.value, s.region?.value ?? null])).toEqual([
      [1, 'kidney', '64033007', null],
      [2, 'kidney tumor', '108369006', '64033007'],
    ]);
  });

  it('statistics: volumes, HU moments, and lesions largest first with centroids', () => {
    // Organ: the slab k = 0..1 (160 voxels); two tumors: a 2x2x1 block and a single voxel.
    const mask = grid((i, j, k) => {
      if (k === 4 && i < 2 && j < 2) return 2;
      if (k === 5 && i === 9 && j === 7) return 2;
      return k <= 1 ? 1 : 0;
    }, 'uint8') as ReturnType<typeof grid> & { data: Uint8Array };
    const image = grid((i, _j, k) => (k <= 1 ? 10 * i : k === 4 ? -50 : 300), 'int16');
    const s = segmentationStatisticsSchema.parse(
      segmentationStatistics(image, mask, structures, {
        model: { name: 'm', version: '1' },
        organ: 'kidney',
      }),
    );
    expect(s.voxelMl).toBeCloseTo(0.012, 12);
    expect(s.structures[0]).toMatchObject({ voxels: 160, hu: { mean: 45, min: 0, max: 90 } });
    expect(s.structures[0].volumeMl).toBeCloseTo(1.92, 10);
    expect(s.structures[0].hu!.sd).toBeCloseTo(Math.sqrt(825), 2);
    expect(s.structures[1]).toMatchObject({ voxels: 5, hu: { min: -50, max: 300 } });
    expect(s.lesions).toEqual([
      { id: 1, voxels: 4, volumeMl: 4 * 0.012, centroidMm: [-9, -7, 12], huMean: -50 },
      { id: 2, voxels: 1, volumeMl: expect.closeTo(0.012, 12), centroidMm: [8, 6, 15], huMean: 300 },
    ]);
    expect([s.organVoxels, s.tumorVoxels]).toEqual([160, 5]);
  });

  it('preview: patient right on the image left, anterior and superior up, whatever the storage order', () => {
    // Bright where the patient's right (RAS i >= 5), everything organ.
    const image = grid((i) => (i >= 5 ? 250 : -175), 'int16');
    const mask = grid(() => 0, 'uint8') as ReturnType<typeof grid> & { data: Uint8Array };
    for (const codes of ['RAS', 'LPS', 'PIL']) {
      const img = applyReorientation(image, reorientationTo(image.affine, codes));
      const msk = applyReorientation(mask, reorientationTo(mask.affine, codes)) as typeof mask;
      const { width, height, data } = renderSegmentPreview(img, msk, structures, { panelSize: 40 });
      const grey = (x: number, y: number) => data[4 * (y * width + x)];
      // Axial panel is 40 px wide (20 mm x 16 mm): sample away from the R/L glyphs.
      expect(grey(12, 4)).toBe(255);
      expect(grey(28, 4)).toBe(0);
      expect(height).toBeGreaterThan(0);
    }
  });

  it('label tables name every class', () => {
    expect(itkSnapLabels(structures)).toContain('    2   230   40   40        1  1  1    "kidney tumor"');
    expect(slicerColorTable(structures).trim().split('\n').at(-1)).toBe('2 kidney_tumor 230 40 40 255');
    expect(labelTablePaths('/x/case.nii.gz')).toEqual({
      itkSnap: '/x/case.label.txt',
      slicer: '/x/case.ctbl',
    });
  });
});
