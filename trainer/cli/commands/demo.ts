/**
 * `freetumor demo [--out DIR] [--quick] [--data DIR --label-map MAP --organ O] [--no-edge] [--json]`:
 * the product end to end on this machine (trainer/demo/run.ts): phantom (or the user's) data,
 * tumor synthesis, three tiny trainings on the CPU, int8 ONNX export, publishing to a local R2,
 * the Worker under `wrangler dev` with real HTTP calls, evaluation and a report folder.
 */
import type { Command } from 'commander';
import { isOrganName, ORGAN_CHOICES } from '../../../shared/labels/organs.ts';
import { CliError, integer, log, positiveNumber, printResult } from '../output.ts';

interface DemoCliOptions {
  out: string;
  quick?: boolean;
  data?: string;
  labelMap: string;
  organ: string;
  edge: boolean;
  seed: number;
  budgetScale: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'run the whole product locally: data, synthesis, training (cpu), ONNX export, local R2, local Worker, evaluation, report',
    )
    .option(
      '--out <dir>',
      'output folder (its data/, runs/, models/, r2-state/, edge/, report/ are replaced)',
      'demo-out',
    )
    .option(
      '--quick',
      'the same stages on smaller data with fewer steps (what CI runs, about a minute on 2 cores)',
    )
    .option(
      '--data <dir>',
      'your NIfTI data set (nnU-Net/MSD layout: imagesTr, labelsTr, optional imagesUnlabeled/labelsUnlabeled, imagesTs/labelsTs) instead of phantoms',
    )
    .option(
      '--label-map <map>',
      'label map of --data (freetumor = MSD liver: 1 organ, 2 tumor; or e.g. liver=1,liver_tumor=2)',
      'freetumor',
    )
    .option('--organ <name>', `organ to synthesize and segment (${ORGAN_CHOICES})`, 'liver')
    .option('--no-edge', 'skip the local Worker (wrangler dev) and its HTTP calls')
    .option('--seed <n>', 'random seed of data and training', integer('--seed', 0), 0)
    .option(
      '--budget-scale <x>',
      'scale every training time budget (e.g. 2 on a fast machine)',
      positiveNumber('--budget-scale'),
      1,
    )
    .option('--json', 'print one JSON object (the result summary)')
    .action(async (opts: DemoCliOptions) => {
      if (!isOrganName(opts.organ)) throw new CliError(`--organ must be one of ${ORGAN_CHOICES}`);
      if (opts.budgetScale > 20) throw new CliError('--budget-scale must be at most 20');
      if (opts.data) {
        const { parseLabelMap } = await import('../../../shared/labels/labelmap.ts');
        parseLabelMap(opts.labelMap);
      }
      const { existsSync } = await import('node:fs');
      const { fileURLToPath } = await import('node:url');
      const shared = fileURLToPath(new URL('../../../../shared/data/', import.meta.url));
      const { runDemo } = await import('../../demo/run.ts');
      const result = await runDemo({
        out: opts.out,
        quick: opts.quick === true,
        data: opts.data ?? null,
        labelMap: opts.labelMap,
        organ: opts.organ as 'liver',
        edge: opts.edge,
        seed: opts.seed,
        budgetScale: opts.budgetScale,
        sharedData: existsSync(shared) ? shared : null,
        log,
      });
      const failed = result.stages.filter((s) => s.status === 'failed');
      const summary = {
        report: `${result.reportDir}/report.html`,
        markdown: `${result.reportDir}/report.md`,
        totalSeconds: Math.round(result.totalSeconds),
        interrupted: result.interrupted,
        stages: result.stages.map((s) => ({
          name: s.name,
          status: s.status,
          seconds: Math.round(s.seconds * 10) / 10,
          note: s.note,
        })),
        comparison: result.comparison,
        edge: result.edge && {
          segment: result.edge.segment,
          score: result.edge.score,
          calls: result.edge.calls.map((c) => ({ route: c.route, status: c.status })),
        },
      };
      printResult(opts.json === true, summary, () =>
        [
          `demo finished in ${summary.totalSeconds} s${result.interrupted ? ' (interrupted)' : ''}`,
          ...result.stages
            .filter((s) => s.status !== 'done')
            .map((s) => `  ${s.name}: ${s.status}: ${s.note}`),
          `report: ${summary.report}`,
          `        ${summary.markdown}`,
        ].join('\n'),
      );
      if (result.interrupted) throw new CliError('demo interrupted; the partial report is written');
      if (failed.length > 0)
        throw new CliError(
          `${failed.length} demo stage(s) failed: ${failed.map((s) => s.name).join(', ')} (see the report)`,
        );
    });
}
