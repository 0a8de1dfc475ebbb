/**
 * From the demo's measurements to its report folder: report.html (self-contained: plots inline,
 * PNGs embedded), report.md with the PNGs and SVG plots beside it, result.json with every number.
 * Only measured values are shown; a stage that did not run appears as skipped with its reason.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { readNifti } from '../../shared/volume/nifti.ts';
import { syntheticLabel } from './edge-calls.ts';
import { acceptanceCurve, metricCurve, overlayPng, sideBySidePng } from './figures.ts';
import type { DemoOptions } from './plan.ts';
import {
  type Chart,
  type Figure,
  type Report,
  renderChartSvg,
  renderHtml,
  renderMarkdown,
  type Table,
} from './report.ts';
import { type DemoArtifacts, type DemoResult, writeResultJson } from './result.ts';

function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} kB`;
}

function stageTable(r: DemoResult): Table {
  return {
    title: 'Stages and timings',
    columns: ['stage', 'status', 'seconds', 'result'],
    rows: r.stages.map((s) => [s.name, s.status, Number(s.seconds.toFixed(1)), s.note]),
    note: `Total ${r.totalSeconds.toFixed(0)} s on ${cpus().length} CPU core(s)${r.interrupted ? ' (interrupted by the user)' : ''}.`,
  };
}

function trainingTable(r: DemoResult): Table {
  return {
    title: 'Training runs (tfjs, cpu)',
    columns: [
      'run',
      'steps',
      's/step',
      'parameters',
      'training cases',
      'validation cases',
      'last loss',
      'best validation',
      'settings',
    ],
    rows: r.runs.map((t) => [
      t.name,
      `${t.steps}/${t.plannedSteps}`,
      Number(t.secondsPerStep.toFixed(2)),
      t.parameters,
      t.cases,
      t.validationCases,
      t.last.loss ?? t.last.g_loss ?? null,
      t.best,
      `${t.settings}${t.stoppedEarly ? `; STOPPED by the time guard (${t.timeLimitSeconds.toFixed(0)} s)` : ''}`,
    ]),
    note: `Fixed step counts (the same seed gives the same models); the best validation score is the tumor Dice on validation cases with a tumor (+ 0.01 organ Dice), with the deployed post-processing, and picks the exported checkpoint. Backend: ${r.backend ?? 'none'}.`,
  };
}

function lesionTable(r: DemoResult): Table | null {
  if (r.lesions.length === 0) return null;
  const models = r.comparison.map((s) => s.model);
  return {
    title: 'Every held-out lesion: size and which model found it',
    columns: [
      'case',
      'lesion',
      'volume (ml)',
      ...models.map((m) => `${m.split(' ')[0]}: found (lesion Dice)`),
    ],
    rows: [...r.lesions]
      .sort((a, b) => a.volumeMl - b.volumeMl)
      .map((l) => [
        l.caseId,
        l.lesion,
        Number(l.volumeMl.toFixed(2)),
        ...models.map((m) => {
          const f = l.found[m];
          return f ? `${f.detected ? 'yes' : 'no'} (${f.dice.toFixed(2)})` : '-';
        }),
      ]),
    note: 'A lesion is found when a predicted tumor component overlaps it; sorted by size.',
  };
}

function synthesisTable(r: DemoResult): Table | null {
  const m = r.synthesis;
  if (!m) return null;
  const iqr = (x: { n: number; median: number | null; q1: number | null; q3: number | null }) =>
    x.median === null
      ? '-'
      : `${x.median.toFixed(0)} (${(x.q1 ?? 0).toFixed(0)} to ${(x.q3 ?? 0).toFixed(0)}), n=${x.n}`;
  const r3 = (x: { median: number | null; q1: number | null; q3: number | null }) =>
    x.median === null
      ? '-'
      : `${x.median.toFixed(3)} (${(x.q1 ?? 0).toFixed(3)} to ${(x.q3 ?? 0).toFixed(3)})`;
  const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(0)}%`);
  return {
    title: 'Synthesis on held-out cases',
    columns: ['measure', 'value'],
    rows: [
      ['discriminator ROC AUC, real lesions vs generator-made tumors', m.discriminatorAuc],
      ['discriminator p(real), real lesions: median (IQR)', r3(m.realism.real)],
      ['discriminator p(real), generator-made: median (IQR)', r3(m.realism.generator)],
      ['HU contrast (organ mean - lesion mean), real lesions: median (IQR)', iqr(m.contrastHu.real)],
      ['HU contrast, handcrafted synthetic tumors', iqr(m.contrastHu.handcrafted)],
      ['HU contrast, generator-made synthetic tumors', iqr(m.contrastHu.generator)],
      ['quality control accepts, generator-made', pct(m.qcAcceptance)],
      ['quality control accepts, handcrafted', pct(m.qcAcceptanceHandcrafted)],
    ],
    note: 'Real lesions: one patch centred on each held-out lesion. Synthetic: patches centred on organ voxels of held-out cases, one tumor planned as in training, with the handcrafted scalar difference U(0.2, 0.7) and with the generator. The generator exists to bring the synthetic contrast toward the real one.',
  };
}

function qcCheckTable(r: DemoResult): Table | null {
  const q = r.qcSegmentorCheck;
  if (!q) return null;
  const a = q.averages;
  return {
    title: 'Quality-control segmentor (the frozen baseline) on real tumors',
    columns: ['cases', 'lesions found', 'tumor Dice (cases with a tumor)', 'detects real tumors'],
    rows: [
      [
        `${a.cases} ${q.on}`,
        `${a.lesionsDetected}/${a.trueLesions}`,
        a.tumorDiceCasesWithTumor,
        q.detectsRealTumors ? 'yes' : 'NO: QC rejects most synthetic tumors',
      ],
    ],
    note: 'Checked before the FreeTumor run: a segmentor that finds no real tumor cannot judge synthetic ones.',
  };
}

function comparisonTable(r: DemoResult): Table | null {
  if (r.comparison.length === 0) return null;
  return {
    title: 'Segmentation on held-out cases (int8 ONNX, onnxruntime-node, same pipeline as the edge)',
    columns: [
      'model',
      'organ Dice',
      'organ NSD',
      'tumor Dice',
      'tumor NSD',
      'tumor Dice (all cases)',
      'lesions found',
      'false-positive lesions',
      'tumor ml on healthy cases',
      'seconds',
    ],
    rows: r.comparison.map((s) => [
      s.model,
      s.organDice,
      s.organNsd,
      s.tumorDice,
      s.tumorNsd,
      s.tumorDiceAllCases,
      `${s.lesionsDetected}/${s.trueLesions}`,
      s.falsePositiveLesions,
      s.healthyFalseTumorMl,
      Number(s.seconds.toFixed(1)),
    ]),
    note: 'The control starts from the baseline\'s weights and trains as many steps as FreeTumor on real tumors only: FreeTumor minus the control is what the synthetic tumors add, apart from the extra steps; one training seed cannot rank differences smaller than the seed-to-seed spread (docs/training-recipe.md measures it over seeds). Tumor Dice and NSD are means over the cases whose reference has a tumor (the reference convention); "all cases" also counts the tumor-free case (a false tumor there scores 0). NSD at 2 mm tolerance. Phantom CTs, small models trained for minutes on a CPU: the numbers show what the method learns on this data, not clinical accuracy.',
  };
}

function edgeTables(r: DemoResult): Table[] {
  if (!r.edge) return [];
  const tables: Table[] = [
    {
      title: 'Edge API calls (local Worker, wrangler dev)',
      columns: ['call', 'HTTP status', 'seconds', 'result'],
      rows: r.edge.calls.map((c) => [c.route, c.status, Number(c.seconds.toFixed(2)), c.note]),
      note: `Worker at ${r.edge.base}; stopped afterwards: ${r.edge.workerStopped ? 'yes' : 'no'}.`,
    },
  ];
  if (r.edge.score) {
    const row = (
      name: string,
      a: { realism: number | null; detection: number | null; accepted: boolean },
    ) => [name, a.realism, a.detection, a.accepted ? 'yes' : 'no'];
    tables.push({
      title: 'Quality score of a synthetic tumor (/v1/score)',
      columns: ['input', 'realism (discriminator)', 'detection (segmentor)', 'accepted'],
      rows: [
        row('synthetic tumor from /v1/synthesize', r.edge.score.synthetic),
        row('control: same region, no tumor inserted', r.edge.score.control),
      ],
    });
  }
  return tables;
}

function modelsTable(r: DemoResult): Table | null {
  if (r.exported.length === 0) return null;
  return {
    title: 'Exported models',
    columns: ['set', 'role', 'version', 'int8', 'fp32', 'published to local R2'],
    rows: r.exported.flatMap((g) =>
      g.models.map((m) => [
        g.group,
        m.role,
        m.version,
        mb(m.files.find((f) => f.precision === 'int8')?.bytes ?? 0),
        mb(m.files.find((f) => f.precision === 'fp32')?.bytes ?? 0),
        g.group === 'published' && r.published?.models[m.role] ? 'yes' : 'no',
      ]),
    ),
    note: r.published
      ? `${r.published.objects} objects written to the local R2 state, ${r.published.latestKey} last.`
      : 'Not published.',
  };
}

function charts(r: DemoResult): Chart[] {
  const metrics = (name: string) => join(r.out, 'runs', name, 'metrics.jsonl');
  const out: Chart[] = [];
  const steps = Math.max(1, ...r.runs.map((t) => t.steps));
  const smooth = Math.max(1, Math.round(steps / 20));
  const segRuns = r.runs.filter((t) => t.name !== 'synthesis');
  if (segRuns.length) {
    out.push({
      title: `Segmentation loss (DiceCE, moving average of ${smooth})`,
      yLabel: 'loss',
      curves: segRuns.map((t) => metricCurve(metrics(t.name), 'loss', t.name, smooth)),
      file: 'curve-segmentation-loss.svg',
    });
  }
  const validated = segRuns.filter((t) => t.best !== null);
  if (validated.length) {
    out.push({
      title: 'Validation (cases with a tumor, deployed post-processing)',
      yLabel: 'Dice',
      curves: validated.flatMap((t) => [
        metricCurve(metrics(t.name), 'val_tumor_dice_cases_with_tumor', `${t.name}: tumor Dice`, 1, true),
        metricCurve(metrics(t.name), 'val_organ_dice', `${t.name}: organ Dice`, 1, true),
      ]),
      file: 'curve-validation.svg',
    });
  }
  if (r.runs.some((t) => t.name === 'synthesis')) {
    out.push({
      title: `Synthesis training (moving average of ${smooth})`,
      yLabel: 'loss',
      curves: [
        metricCurve(metrics('synthesis'), 'g_loss', 'generator', smooth),
        metricCurve(metrics('synthesis'), 'd_loss', 'discriminator', smooth),
        metricCurve(metrics('synthesis'), 'g_seg', 'G: 1 - segmentor detection', smooth),
      ],
      file: 'curve-synthesis-loss.svg',
    });
  }
  if (r.runs.some((t) => t.name === 'freetumor')) {
    out.push({
      title: `FreeTumor: fraction of synthetic tumors accepted by quality control (moving average of ${smooth})`,
      yLabel: 'accepted',
      curves: [acceptanceCurve(metrics('freetumor'), 'accepted / synthesized', smooth)],
      file: 'curve-qc-acceptance.svg',
    });
  }
  return out;
}

async function figures(
  r: DemoResult,
  a: DemoArtifacts,
  options: DemoOptions,
): Promise<{ figures: Figure[]; lead: Figure[]; pngs: Map<string, Uint8Array> }> {
  const pngs = new Map<string, Uint8Array>();
  const figs: Figure[] = [];
  const add = async (file: string, bytes: Uint8Array, title: string, caption: string) => {
    await writeFile(join(r.reportDir, file), bytes);
    pngs.set(file, bytes);
    figs.push({ title, file, caption });
  };
  for (const s of r.showcase) {
    const path = join(r.reportDir, s.figure.file);
    if (existsSync(path)) {
      pngs.set(s.figure.file, new Uint8Array(await readFile(path)));
      figs.push(s.figure);
    }
  }
  const edge = a.edge;
  if (edge?.segment) {
    const s = edge.segment;
    await add(
      'edge-segment.png',
      overlayPng(s.image, s.mask, { organ: [1], tumor: [2] }),
      `/v1/segment on ${s.caseId}`,
      'the mask the Worker returned, on the input grid',
    );
  }
  const healthy = a.healthy.find((c) => c.id === edge?.synthesize?.caseId);
  if (edge?.synthesize && healthy) {
    const input = readNifti(new Uint8Array(await readFile(healthy.label)));
    const label = syntheticLabel(input, edge.synthesize.label, healthy.labelMap, options.organ);
    await add(
      'edge-synthesize.png',
      overlayPng(edge.synthesize.image, label, { organ: [1], synthetic: [3] }),
      `/v1/synthesize on ${edge.synthesize.caseId}`,
      'the CT the Worker returned; organ green, synthetic tumor red',
    );
  }
  // The generator's own samples during synthesis training (original | synthetic | outline).
  const samples = join(r.out, 'runs', 'synthesis', 'samples');
  if (existsSync(samples)) {
    const files = (await readdir(samples)).filter((f) => f.endsWith('.png')).sort();
    for (const f of files.slice(-2)) {
      await add(
        `generator-${f}`,
        new Uint8Array(await readFile(join(samples, f))),
        `Generator sample, synthesis training ${f.replace('.png', '').replace('step-', 'step ')}`,
        'training crop, the same crop with the generator-made tumor, and with its outline (axial slice through the tumor)',
      );
    }
  }
  // Truth / baseline / FreeTumor on the same slices, shown right after the verdict.
  const lead: Figure[] = [];
  for (const ex of a.comparison?.examples ?? []) {
    const names = Object.keys(ex.predictions);
    const file = `side-by-side-${ex.caseId}.png`;
    const bytes = sideBySidePng(
      ex.image,
      ex.truth,
      names.map((n) => ex.predictions[n]),
    );
    await writeFile(join(r.reportDir, file), bytes);
    pngs.set(file, bytes);
    lead.push({
      title: `${ex.caseId}: CT | reference | ${names.join(' | ')}`,
      file,
      caption: 'the same axial slice (where the reference tumor is largest); organ green, tumor yellow',
      wide: true,
    });
  }
  return { figures: figs, lead, pngs };
}

export async function writeDemoReport(
  r: DemoResult,
  a: DemoArtifacts,
  options: DemoOptions,
  log: (m: string) => void,
): Promise<void> {
  const { figures: figs, lead, pngs } = await figures(r, a, options);
  const chartList = charts(r);
  for (const c of chartList) if (c.file) await writeFile(join(r.reportDir, c.file), renderChartSvg(c));
  const tables = [
    stageTable(r),
    trainingTable(r),
    comparisonTable(r),
    lesionTable(r),
    synthesisTable(r),
    qcCheckTable(r),
    ...edgeTables(r),
    modelsTable(r),
  ].filter((t): t is Table => t !== null);
  const skipped = r.stages.filter((s) => s.status !== 'done').map((s) => `${s.name}: ${s.status}: ${s.note}`);
  const summary = [
    ...(r.data?.notes ?? []),
    `plan ${r.plan.name}: ${r.plan.spacing} mm grid, ${r.plan.patch}^3 patches, U-Net base ${r.plan.model.baseChannels} depth ${r.plan.model.depth}, fixed steps baseline ${r.plan.steps.baseline}, synthesis ${r.plan.steps.synthesis}, then FreeTumor and its real-only control ${r.plan.steps.freetumor} each from the baseline's weights; CPU training (production training uses a GPU at 1.5 mm and 96^3)`,
    ...r.runs.map(
      (t) =>
        `${t.name}: ${t.steps}/${t.plannedSteps} steps in ${t.seconds.toFixed(0)} s${t.stoppedEarly ? ' (STOPPED by the time guard: results are not those of the plan)' : ''}`,
    ),
    ...(r.edge?.segment
      ? [
          `edge /v1/segment on ${r.edge.segment.caseId}: organ Dice ${r.edge.segment.organDice.toFixed(3)}, tumor Dice ${r.edge.segment.tumorDice.toFixed(3)}`,
        ]
      : []),
    ...skipped,
    `total ${r.totalSeconds.toFixed(0)} s`,
  ];
  const report: Report = {
    title: `FreeTumor demo (${r.plan.name})`,
    verdict: r.verdict,
    leadFigures: lead,
    created: `${new Date().toISOString()}, ${cpus().length} CPU core(s), no GPU used`,
    summary,
    tables,
    charts: chartList,
    figures: figs,
  };
  await writeFile(join(r.reportDir, 'report.html'), renderHtml(report, { images: pngs }));
  await writeFile(join(r.reportDir, 'report.md'), renderMarkdown(report));
  await writeResultJson(r);
  log(`report: ${join(r.reportDir, 'report.html')} (and report.md, result.json)`);
}
