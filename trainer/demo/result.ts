/**
 * What the demo measured (written as result.json beside the report) and the in-memory extras the
 * report draws. Kept apart from run.ts (which runs the stages) and report-build.ts (which draws
 * them), so neither imports the other.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelRole } from '../../shared/model/manifest.ts';
import type { SynthesisEvaluation } from '../train/synthesis-eval.ts';
import type { DemoData } from './data.ts';
import type { EdgeResults } from './edge-calls.ts';
import type { LesionRow, LocalComparison, ModelScores } from './evaluation.ts';
import type { LocalPublishResult } from './local-r2.ts';
import type { DemoPlan } from './plan.ts';
import type { ShowcaseItem } from './showcase.ts';
import type { StageRecord } from './stages.ts';
import type { TrainedRun } from './training.ts';

export interface ExportedGroup {
  group: 'baseline' | 'control' | 'published';
  dir: string;
  models: Array<{ role: ModelRole; version: string; files: Array<{ precision: string; bytes: number }> }>;
}

export interface DemoResult {
  plan: DemoPlan;
  out: string;
  reportDir: string;
  totalSeconds: number;
  interrupted: boolean;
  backend: string | null;
  stages: StageRecord[];
  data: Pick<DemoData, 'source' | 'counts' | 'notes'> | null;
  showcase: ShowcaseItem[];
  runs: TrainedRun[];
  /** The frozen baseline checked as the QC segmentor on real tumors (before the FreeTumor run). */
  qcSegmentorCheck: TrainedRun['qcCheck'];
  /** Discriminator AUC, HU contrast and QC acceptance on the held-out cases. */
  synthesis: SynthesisEvaluation | null;
  exported: ExportedGroup[];
  published: LocalPublishResult | null;
  edge: {
    base: string;
    calls: EdgeResults['calls'];
    health: EdgeResults['health'];
    segment: {
      caseId: string;
      organDice: number;
      tumorDice: number;
      tumorNsd: number;
      lesionsDetected: number;
      trueLesions: number;
    } | null;
    synthesize: Record<string, unknown> | null;
    score: EdgeResults['score'];
    workerStopped: boolean;
    /** The Worker's process group (wrangler and its workerd), gone once the demo ends. */
    workerPgid: number;
  } | null;
  /** Baseline, control and FreeTumor segmentors on the held-out cases (exported int8, the CLI's pipeline). */
  comparison: ModelScores[];
  /** Every true held-out lesion: its size and which model found it. */
  lesions: LesionRow[];
  /** One line: what was learned, FreeTumor against the baseline and the real-only control. */
  verdict: string;
}

/** In-memory extras the report draws (volumes), not part of result.json. */
export interface DemoArtifacts {
  edge: EdgeResults | null;
  comparison: LocalComparison | null;
  healthy: DemoData['healthy'];
}

/** Writes result.json (numbers only) beside the report. */
export async function writeResultJson(result: DemoResult): Promise<string> {
  const path = join(result.reportDir, 'result.json');
  await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
