/** Tumor synthesis (FreeTumor method §2): the public surface. */
export { applyDifference, type CompositionMode, DIFFERENCE_RANGE, drawDifference } from './compose.ts';
export { gaussianFilter3d, gaussianKernel } from './gaussian.ts';
export { blur7, generatorDifference, generatorDifferenceInRegion } from './generator.ts';
export { pickLocation } from './location.ts';
export {
  defaultTextureBank,
  forEachTumorVoxel,
  type PlanOptions,
  planSynthesis,
  type Region,
  type SynthesisInput,
  type SynthesisPlan,
  type TumorInfo,
} from './plan.ts';
export { renderAxialPng } from './preview.ts';
export type { TumorSummary } from './summary.ts';
export { type SynthesisResult, type SynthesizeOptions, synthesize } from './synthesize.ts';
export { DEFAULT_TEXTURE_SIGMAS, TextureBank } from './texture.ts';
export { radiusRange, SYNTHESIS_TYPES, type SynthesisType, TUMOR_TYPES, type TumorType } from './tumors.ts';
export {
  type DifferenceProvider,
  synthesizeVolume,
  synthesizeVolumeWith,
  type VolumeSynthesisOptions,
  type VolumeSynthesisResult,
  type VolumeSynthesisSummary,
} from './whole-volume.ts';
