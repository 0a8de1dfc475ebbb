/**
 * `freetumor segment --model DIR --image CT --out MASK [--json]`: local inference with the same
 * pipeline as the edge (shared/inference/pipeline.ts) on onnxruntime-node. The mask lies on the
 * input's grid with its affine: 0 background, 1 organ, 2 tumor (the model's class ids).
 */
import type { Command } from 'commander';
import { CliError, integer, log, printResult } from '../output.ts';

interface SegmentCliOptions {
  model: string;
  image: string;
  out: string;
  organ?: string;
  precision: 'int8' | 'fp32';
  threads?: number;
  batch: number;
  minLesionMl: number;
  organConstraint: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment the organ and tumors of a CT with an exported model (onnxruntime-node)')
    .requiredOption(
      '--model <dir>',
      'exported model folder (holding segmentor/manifest.json or manifest.json)',
    )
    .requiredOption('--image <ct>', 'CT volume, .nii or .nii.gz, in HU')
    .requiredOption('--out <mask>', 'output mask, .nii.gz or .nii')
    .option('--organ <name>', 'organ to segment (must be one the model covers)')
    .option('--precision <p>', 'model file to use: int8 or fp32', parsePrecision, 'int8')
    .option('--threads <n>', 'onnxruntime intra-op threads (default: all cores)', integer('--threads', 1))
    .option('--batch <n>', 'patches per inference call', integer('--batch', 1), 1)
    .option(
      '--min-lesion-ml <ml>',
      'remove tumor components smaller than this',
      nonNegative('--min-lesion-ml'),
      0,
    )
    .option('--no-organ-constraint', 'keep tumors that touch no organ voxel')
    .option('--json', 'print one JSON object')
    .action(async (opts: SegmentCliOptions) => {
      if (!/\.nii(\.gz)?$/i.test(opts.out)) throw new CliError('--out must end in .nii.gz or .nii');
      const { segmentNiftiStream } = await import('../../../shared/inference/stream-segment.ts');
      const { NiftiSliceReader } = await import('../../../shared/volume/nifti-slices.ts');
      const { openInputStream, writeOutputStream } = await import('../nifti-files.ts');
      const { openLocalModel } = await import('../../runners/local-model.ts');
      const { voxelMl } = await import('../../../shared/metrics/dice.ts');
      // Streamed: the CT is read slice by slice while the windows run (a 1000-slice CT never
      // exists whole in memory), its header checked before the model loads or anything is inflated.
      const input = await NiftiSliceReader.open(await openInputStream(opts.image, 'image'));
      const model = await openLocalModel(opts.model, 'segmentor', {
        precision: opts.precision,
        threads: opts.threads,
      });
      if (!model) throw new CliError('no segmentor in the model folder');
      const t0 = performance.now();
      const progress = process.stderr.isTTY
        ? (done: number, total: number) => process.stderr.write(`\rsegment: patch ${done}/${total}`)
        : undefined;
      const result = await segmentNiftiStream(input, model.manifest, model.runner, {
        organ: opts.organ,
        organConstraint: opts.organConstraint,
        minLesionMl: opts.minLesionMl,
        batchSize: opts.batch,
        onProgress: progress,
      });
      if (progress) process.stderr.write('\n');
      await writeOutputStream(opts.out, result.maskStream(/\.gz$/i.test(opts.out)));
      await model.runner.release?.();
      const seconds = (performance.now() - t0) / 1000;
      const counts = result.classVoxels();
      const lesions = result.lesions();
      const organ = counts[1] ?? 0;
      const tumor = counts[2] ?? 0;
      const ml = voxelMl(result.affine);
      const summary = {
        model: { name: model.manifest.name, version: model.manifest.version, precision: model.precision },
        dims: result.dims,
        modelDims: result.modelDims,
        organVoxels: organ,
        tumorVoxels: tumor,
        organMl: round(organ * ml),
        tumorMl: round(tumor * ml),
        lesions: lesions.map((l) => ({ ...l, volumeMl: round(l.volumeMl) })),
        seconds: round(seconds),
      };
      log(`segment: ${lesions.length} lesion(s) in ${seconds.toFixed(1)} s`);
      printResult(opts.json === true, summary, () =>
        [
          `model      ${summary.model.name} ${summary.model.version} (${summary.model.precision})`,
          `organ      ${summary.organMl} ml`,
          `tumor      ${summary.tumorMl} ml in ${summary.lesions.length} lesion(s)`,
          ...summary.lesions.map(
            (l, i) =>
              `  lesion ${i + 1}: ${l.volumeMl} ml at (${l.centroidMm.map((c) => c.toFixed(1)).join(', ')}) mm`,
          ),
        ].join('\n'),
      );
    });
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function parsePrecision(value: string): 'int8' | 'fp32' {
  if (value !== 'int8' && value !== 'fp32')
    throw new CliError(`--precision must be int8 or fp32, got ${JSON.stringify(value)}`);
  return value;
}

export function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new CliError(`${name} must be a number >= 0, got ${JSON.stringify(value)}`);
    return n;
  };
}
