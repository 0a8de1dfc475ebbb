/**
 * `segment --input-dir DIR --output-dir DIR`: every case of a folder with one loaded model (nnU-Net's
 * `predict -i -o`). A case is a NIfTI file (.nii / .nii.gz), a zip of a DICOM series, or a sub-folder
 * holding one DICOM series; its outputs are named after it. A failed case is reported and the others
 * go on; the summary lists every case and the command exits non-zero when any failed. Progress: a bar
 * on a terminal, else one line per case on stderr (the case number, never its name).
 */
import { join } from 'node:path';
import { isFreeTumorError } from '../../shared/errors.ts';
import { CliError, log } from '../cli/output.ts';
import { inputEntries } from '../io/case-files.ts';
import type { LocalModel } from '../runners/local-model.ts';
import { type CaseSummary, type CaseTargets, type SegmentCaseOptions, segmentCase } from './case.ts';

export interface BatchCase {
  /** Output stem (the input's name without .nii / .nii.gz / .zip). */
  id: string;
  path: string;
}

/** The cases of `dir` in name order (trainer/io/case-files.ts); other files are skipped (counted). */
export async function listCases(dir: string): Promise<{ cases: BatchCase[]; skipped: number }> {
  let listed: Awaited<ReturnType<typeof inputEntries>>;
  try {
    listed = await inputEntries(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'ENOENT' ? '--input-dir not found' : `--input-dir cannot be read (${code})`);
  }
  const cases = listed.entries.map((e) => ({ id: e.stem, path: e.path }));
  const seen = new Map<string, number>();
  cases.forEach((c, i) => {
    const other = seen.get(c.id);
    if (other !== undefined)
      throw new CliError(`--input-dir cases ${other + 1} and ${i + 1} would write the same output name`);
    seen.set(c.id, i);
  });
  return { cases, skipped: listed.skipped };
}

export function caseTargets(
  outDir: string,
  id: string,
  o: { outputType: SegmentCaseOptions['outputType']; statistics: boolean; preview: boolean },
): CaseTargets {
  return {
    mask: join(outDir, o.outputType === 'dicom-seg' ? `${id}.seg.dcm` : `${id}.nii.gz`),
    statistics: o.statistics ? join(outDir, `${id}.statistics.json`) : undefined,
    preview: o.preview ? join(outDir, `${id}.preview.png`) : undefined,
  };
}

export type BatchResult =
  | ({ case: string; ok: true } & CaseSummary)
  | { case: string; ok: false; error: string };

/** A one-line reason that carries no path: our typed errors are safe to show, others by code only. */
function reason(e: unknown): string {
  if (isFreeTumorError(e) || e instanceof CliError) return e.message;
  const code = (e as NodeJS.ErrnoException)?.code;
  return `internal error${code ? ` (${code})` : ''}`;
}

export async function runBatch(
  cases: BatchCase[],
  outDir: string,
  model: LocalModel,
  options: SegmentCaseOptions,
  extras: { statistics: boolean; preview: boolean },
): Promise<BatchResult[]> {
  const bar = await progressBar(cases.length);
  const results: BatchResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const t0 = performance.now();
    try {
      const summary = await segmentCase(
        c.path,
        model,
        options,
        caseTargets(outDir, c.id, { ...options, ...extras }),
      );
      results.push({ case: c.id, ok: true, ...summary });
      if (!bar)
        log(
          `segment: case ${i + 1}/${cases.length} done: ${summary.lesions.length} lesion(s), ${((performance.now() - t0) / 1000).toFixed(1)} s`,
        );
    } catch (e) {
      results.push({ case: c.id, ok: false, error: reason(e) });
      if (!bar) log(`segment: case ${i + 1}/${cases.length} failed: ${reason(e)}`);
    }
    bar?.increment();
  }
  bar?.stop();
  return results;
}

async function progressBar(total: number) {
  if (!process.stderr.isTTY) return null;
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { stream: process.stderr, format: 'segment [{bar}] {value}/{total} cases | {eta_formatted} left' },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return bar;
}
