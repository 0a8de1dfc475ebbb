/**
 * Worker thread of `freetumor synthesize-dataset`: synthesizes one (case, variant) per message
 * and writes its CT and label atomically. One texture bank per worker, so textures are
 * generated once per worker and reused across cases.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { isFreeTumorError } from '../shared/errors.ts';
import { type OrganName, parseLabelMap } from '../shared/labels/labelmap.ts';
import { Rng } from '../shared/random.ts';
import { TextureBank } from '../shared/synthesis/texture.ts';
import type { SynthesisType } from '../shared/synthesis/tumors.ts';
import { synthesizeVolume, type VolumeSynthesisSummary } from '../shared/synthesis/whole-volume.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';

export interface SynthesisJob {
  id: string;
  imagePath: string;
  labelPath: string;
  outImage: string;
  outLabel: string;
  seed: number;
  organ: OrganName;
  labelMap: string;
  type: SynthesisType;
  count?: number;
  mode: 'darken' | 'brighten';
  difference?: number;
}

export type SynthesisJobResult =
  | { id: string; ok: true; summary: VolumeSynthesisSummary }
  | { id: string; ok: false; code: string; message: string };

const textures = new TextureBank();

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

export async function runJob(job: SynthesisJob): Promise<SynthesisJobResult> {
  try {
    const image = readNifti(new Uint8Array(await readFile(job.imagePath)));
    const label = readNifti(new Uint8Array(await readFile(job.labelPath)));
    const result = synthesizeVolume(
      image,
      label,
      {
        organ: job.organ,
        labelMap: parseLabelMap(job.labelMap),
        type: job.type,
        count: job.count,
        mode: job.mode,
        difference: job.difference,
        textures,
      },
      new Rng(job.seed),
    );
    await writeAtomic(job.outImage, writeNifti(result.image, { description: 'freetumor synthetic CT (HU)' }));
    await writeAtomic(
      job.outLabel,
      writeNifti(result.label, { description: 'freetumor labels + synthetic tumor' }),
    );
    return { id: job.id, ok: true, summary: result.summary };
  } catch (e) {
    if (isFreeTumorError(e)) return { id: job.id, ok: false, code: e.code, message: e.message };
    const err = e instanceof Error ? e : new Error(String(e));
    return { id: job.id, ok: false, code: 'internal', message: err.message };
  }
}

parentPort?.on('message', async (job: SynthesisJob) => {
  parentPort?.postMessage(await runJob(job));
});
