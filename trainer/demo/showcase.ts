/**
 * The synthesis showcase: handcrafted FreeTumor synthesis (shared/synthesis) on whole healthy CTs,
 * a phantom and, when present, the real TotalSegmentator sample, with a PNG preview of each: the
 * slice through the largest synthetic tumor, plain and with the organ and tumor tinted.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type OrganName, parseLabelMap } from '../../shared/labels/labelmap.ts';
import { Rng } from '../../shared/random.ts';
import { synthesizeVolume } from '../../shared/synthesis/whole-volume.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import type { DemoCase } from './data.ts';
import type { Figure } from './report.ts';

export interface ShowcaseItem {
  caseId: string;
  tumors: number;
  tumorMl: number;
  figure: Figure;
}

/** FreeTumor's working spacing: its tumor radii are given in voxels of 1.5 mm. */
export const SHOWCASE_SPACING_MM = 1.5;

export async function synthesisShowcase(
  cases: readonly DemoCase[],
  organ: OrganName,
  reportDir: string,
  seed: number,
): Promise<ShowcaseItem[]> {
  const spacing = SHOWCASE_SPACING_MM;
  const items: ShowcaseItem[] = [];
  for (const [i, c] of cases.entries()) {
    const image = readNifti(new Uint8Array(await readFile(c.image)));
    const label = readNifti(new Uint8Array(await readFile(c.label)));
    const result = synthesizeVolume(
      image,
      label,
      { organ, labelMap: parseLabelMap(c.labelMap), type: 'medium', count: 2, spacing },
      new Rng(seed + i),
    );
    const file = `synthetic-${c.id}.png`;
    await writeFile(join(reportDir, file), await result.preview());
    const s = result.summary;
    const real = c.labelMap === 'totalseg' ? 'real CT (TotalSegmentator sample)' : 'phantom CT';
    items.push({
      caseId: c.id,
      tumors: s.tumors.length,
      tumorMl: s.inputTumorVolumeMl,
      figure: {
        title: `Synthetic ${organ} tumors in a ${real}`,
        file,
        caption: `${s.tumors.length} tumor(s), ${s.inputTumorVolumeMl.toFixed(1)} ml, ${s.mode} by ${typeof s.difference === 'number' ? s.difference.toFixed(2) : 'a learned map'} of the window, synthesized at ${spacing} mm (left: input, right: organ green, synthetic tumor red)`,
      },
    });
  }
  return items;
}
