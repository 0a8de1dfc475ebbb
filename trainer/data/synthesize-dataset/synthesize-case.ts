/**
 * One variant of one case: a synthetic tumor (handcrafted difference, or the trained generator's
 * per-voxel map through the same shared/synthesis code the Worker runs), then, when quality-control
 * models are given, the published accept rule (shared/inference/quality.ts), retried with new seeds
 * until a tumor is accepted. After the last attempt the original CT and label are kept, as the
 * reference's offline scripts do (Syn_data/Synthesize_liver.py: up to 10 tries until the frozen
 * segmentor detects the tumor).
 */
import { isFreeTumorError } from '../../../shared/errors.ts';
import { boundingBox, cropOrPad } from '../../../shared/geometry/crop.ts';
import { type QualityScore, type ScoringModel, scoreSynthetic } from '../../../shared/inference/quality.ts';
import { type Box, qcCropBox } from '../../../shared/inference/quality-crop.ts';
import type { OnnxRunner } from '../../../shared/inference/runner.ts';
import { type OrganName, parseLabelMap } from '../../../shared/labels/labelmap.ts';
import type { ModelManifest } from '../../../shared/model/manifest.ts';
import { Rng } from '../../../shared/random.ts';
import { generatorDifferenceInRegion } from '../../../shared/synthesis/generator.ts';
import type { TextureBank } from '../../../shared/synthesis/texture.ts';
import type { SynthesisType } from '../../../shared/synthesis/tumors.ts';
import {
  synthesizeVolume,
  synthesizeVolumeWith,
  type VolumeSynthesisOptions,
  type VolumeSynthesisResult,
  withLabelIds,
} from '../../../shared/synthesis/whole-volume.ts';
import { readNifti, writeNifti } from '../../../shared/volume/nifti.ts';
import { type Dims3, makeVolume, type Volume } from '../../../shared/volume/volume.ts';
import { attemptSeed, type VariantStatus } from './plan.ts';

export interface VariantJob {
  id: string;
  seed: number;
  organ: OrganName;
  labelMap: string;
  type: SynthesisType;
  count?: number;
  mode: 'darken' | 'brighten';
  /** Attempts before the original is kept (used only with quality control). */
  attempts: number;
}

export interface SynthesisModels {
  generator?: { manifest: ModelManifest; runner: OnnxRunner };
  segmentor?: ScoringModel;
  discriminator?: ScoringModel;
}

export type VariantOutcome =
  | {
      ok: true;
      status: Exclude<VariantStatus, 'failed'>;
      attempts: number;
      detection: number | null;
      realism: number | null;
      tumors: number;
      tumorVoxels: number;
      /** NIfTI bytes to write; null for a rejected variant (the original is kept as it is). */
      image: Uint8Array | null;
      label: Uint8Array | null;
    }
  | { ok: false; code: string; message: string };

/**
 * The part of the CT the QC models look at: the synthetic tumor's box grown by the QC crop rule of
 * shared/inference/quality-crop.ts (half a model patch in mm on each side, at least one patch), the
 * crop the Worker's /v1/score scores. The reference's offline scripts likewise score a crop, not the
 * whole CT; the rule applied to the scores is the one in shared/inference/quality.ts.
 */
function scoringCrop(image: Volume, mask: Volume, models: SynthesisModels): { image: Volume; mask: Volume } {
  const bb = boundingBox(mask.data, mask.dims);
  if (!bb) return { image, mask };
  const manifests = [models.segmentor?.manifest, models.discriminator?.manifest].filter(
    (m): m is ModelManifest => m !== undefined,
  );
  const tumor: Box = [
    bb.start[0],
    bb.start[0] + bb.size[0] - 1,
    bb.start[1],
    bb.start[1] + bb.size[1] - 1,
    bb.start[2],
    bb.start[2] + bb.size[2] - 1,
  ];
  const box = qcCropBox(image.dims, image.affine, tumor, manifests);
  const start: Dims3 = [box[0], box[2], box[4]];
  const size: Dims3 = [box[1] - box[0] + 1, box[3] - box[2] + 1, box[5] - box[4] + 1];
  return { image: cropOrPad(image, start, size), mask: cropOrPad(mask, start, size) };
}

/** The synthetic voxels only (label 1): real tumors already in the label must not count for QC. */
function syntheticOnly(before: Volume, after: Volume): Volume {
  const mask = new Uint8Array(after.data.length);
  for (let v = 0; v < mask.length; v++) if (after.data[v] !== before.data[v]) mask[v] = 1;
  return makeVolume(after.dims, mask, after.affine, 'uint8');
}

export async function synthesizeVariant(
  imageBytes: Uint8Array,
  labelBytes: Uint8Array,
  job: VariantJob,
  models: SynthesisModels,
  textures: TextureBank,
): Promise<VariantOutcome> {
  try {
    const image = readNifti(imageBytes);
    const label = readNifti(labelBytes);
    // The label's ids (for the tumor id) read once for all the attempts.
    const options: VolumeSynthesisOptions = withLabelIds(
      {
        organ: job.organ,
        labelMap: parseLabelMap(job.labelMap),
        type: job.type,
        count: job.count,
        mode: job.mode,
        textures,
      },
      label,
    );
    const generator = models.generator;
    if (generator) {
      const pre = generator.manifest.preprocessing;
      options.spacing = pre.spacing[0];
      options.window = [pre.window[0], pre.window[1]];
    }
    const qc = models.segmentor !== undefined || models.discriminator !== undefined;
    const attempts = qc ? Math.max(1, job.attempts) : 1;
    let last: { result: VolumeSynthesisResult; score: QualityScore } | null = null;
    for (let a = 0; a < attempts; a++) {
      const rng = new Rng(attemptSeed(job.seed, a));
      const result = generator
        ? await synthesizeVolumeWith(image, label, options, rng, (input, region) =>
            generatorDifferenceInRegion(input, region, generator.runner, generator.manifest, job.organ),
          )
        : synthesizeVolume(image, label, options, rng);
      const written = () => ({
        tumors: result.summary.tumors.length,
        tumorVoxels: result.summary.inputTumorVoxels,
        image: writeNifti(result.image, { description: 'freetumor synthetic CT (HU)' }),
        label: writeNifti(result.label, { description: 'freetumor labels + synthetic tumor' }),
      });
      if (!qc) {
        return { ok: true, status: 'synthesized', attempts: 1, detection: null, realism: null, ...written() };
      }
      const crop = scoringCrop(result.image, syntheticOnly(label, result.label), models);
      const score = await scoreSynthetic(crop.image, crop.mask, {
        segmentor: models.segmentor,
        discriminator: models.discriminator,
        syntheticLabel: 1,
      });
      last = { result, score };
      if (score.accepted) {
        return {
          ok: true,
          status: 'accepted',
          attempts: a + 1,
          detection: score.detection,
          realism: score.realism,
          ...written(),
        };
      }
    }
    return {
      ok: true,
      status: 'rejected',
      attempts,
      detection: last?.score.detection ?? null,
      realism: last?.score.realism ?? null,
      tumors: 0,
      tumorVoxels: 0,
      image: null,
      label: null,
    };
  } catch (e) {
    if (isFreeTumorError(e)) return { ok: false, code: e.code, message: e.message };
    throw e;
  }
}
