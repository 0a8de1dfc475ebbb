/** The segmentation entry point under the name the edge imports; the pipeline lives in pipeline.ts. */
export { type Lesion, type SegmentOptions, type SegmentResult, segmentVolume } from './pipeline.ts';
