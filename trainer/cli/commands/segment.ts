/**
 * `freetumor segment --model DIR --image CT --out MASK [--json]`: local inference with the same
 * pipeline as the edge (shared/inference/pipeline.ts) on the kernels engine or onnxruntime-node
 * (`--engine`, trainer/runners/engine.ts). The mask lies on the
 * input's grid with its affine: 0 background, 1 organ, 2 tumor (the model's class ids).
 */
import type { Command } from 'commander';
import { ENGINE_CHOICES, type EngineChoice } from '../../runners/engine-choice.ts';
import { CliError, integer, log, printResult, readInput, writeOutput } from '../output.ts';

interface SegmentCliOptions {
  model: string;
  image: string;
  out: string;
  organ?: string;
  precision: 'int8' | 'fp32';
  threads?: number;
  engine: EngineChoice;
  batch: number;
  minLesionMl: number;
  organConstraint: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('segment')
    .description('segment the organ and tumors of a CT with an exported model')
    .requiredOption(
      '--model <dir>',
      'exported model folder (holding segmentor/manifest.json or manifest.json)',
    )
    .requiredOption('--image <ct>', 'CT volume, .nii or .nii.gz, in HU')
    .requiredOption('--out <mask>', 'output mask, .nii.gz or .nii')
    .option('--organ <name>', 'organ to segment (must be one the model covers)')
    .option('--precision <p>', 'model file to use: int8 or fp32', parsePrecision, 'int8')
    .option('--threads <n>', 'inference threads (default: all cores)', integer('--threads', 1))
    .option('--engine <e>', `inference engine: ${ENGINE_CHOICES.join(', ')}`, parseEngine, 'auto')
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
      const { readNifti, writeNifti } = await import('../../../shared/volume/nifti.ts');
      const { segmentVolume } = await import('../../../shared/inference/pipeline.ts');
      const { openLocalModel } = await import('../../runners/local-model.ts');
      const { voxelMl } = await import('../../../shared/metrics/dice.ts');
      const volume = readNifti(await readInput(opts.image, 'image'));
      const model = await openLocalModel(opts.model, 'segmentor', {
        precision: opts.precision,
        threads: opts.threads,
        engine: opts.engine,
      });
      if (!model) throw new CliError('no segmentor in the model folder');
      const t0 = performance.now();
      const progress = process.stderr.isTTY
        ? (done: number, total: number) => process.stderr.write(`\rsegment: patch ${done}/${total}`)
        : undefined;
      const result = await segmentVolume(volume, model.manifest, model.runner, {
        organ: opts.organ,
        organConstraint: opts.organConstraint,
        minLesionMl: opts.minLesionMl,
        batchSize: opts.batch,
        onProgress: progress,
      });
      if (progress) process.stderr.write('\n');
      await model.runner.release?.();
      const seconds = (performance.now() - t0) / 1000;
      const gzip = /\.gz$/i.test(opts.out);
      await writeOutput(opts.out, writeNifti(result.mask, { gzip, datatype: 'uint8' }));
      let organ = 0;
      let tumor = 0;
      for (const v of result.mask.data) {
        if (v === 1) organ++;
        else if (v === 2) tumor++;
      }
      const ml = voxelMl(result.mask.affine);
      const summary = {
        model: { name: model.manifest.name, version: model.manifest.version, precision: model.precision },
        engine: model.engine,
        dims: result.mask.dims,
        modelDims: result.modelDims,
        organVoxels: organ,
        tumorVoxels: tumor,
        organMl: round(organ * ml),
        tumorMl: round(tumor * ml),
        lesions: result.lesions.map((l) => ({ ...l, volumeMl: round(l.volumeMl) })),
        seconds: round(seconds),
      };
      log(`segment: ${result.lesions.length} lesion(s) in ${seconds.toFixed(1)} s`);
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

export function parseEngine(value: string): EngineChoice {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value))
    throw new CliError(`--engine must be ${ENGINE_CHOICES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as EngineChoice;
}

export function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0)
      throw new CliError(`${name} must be a number >= 0, got ${JSON.stringify(value)}`);
    return n;
  };
}
