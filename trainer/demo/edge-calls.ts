/**
 * The demo's calls to the running Worker, as an application developer makes them: /health, then
 * with the API key /v1/segment (a held-out CT, the mask evaluated against its reference),
 * /v1/synthesize (a synthetic tumor in a healthy CT) and /v1/score (that synthetic tumor, and the
 * same region of the untouched CT as a control, which a sound quality score should rate lower).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { type OrganName, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import type { CaseEvaluation } from '../../shared/metrics/evaluate.ts';
import { readNifti, writeNifti } from '../../shared/volume/nifti.ts';
import { spacingOf, type Volume } from '../../shared/volume/volume.ts';
import type { DemoCase } from './data.ts';
import { readReference, scoreCase } from './evaluation.ts';

export interface EdgeCall {
  route: string;
  status: number;
  seconds: number;
  note: string;
}

export interface ScoreAnswer {
  realism: number | null;
  detection: number | null;
  accepted: boolean;
}

export interface EdgeResults {
  calls: EdgeCall[];
  health: { status: string; models: Record<string, string> } | null;
  segment: { caseId: string; evaluation: CaseEvaluation; image: Volume; mask: Volume } | null;
  synthesize: { caseId: string; image: Volume; label: Volume; summary: Record<string, unknown> } | null;
  score: { synthetic: ScoreAnswer; control: ScoreAnswer } | null;
}

/**
 * One call, timed. `wrangler dev` reloads the Worker when a source file it bundles changes and
 * answers the request in flight with a 503 that asks to send it again; the call is repeated then
 * (at most twice) and the note says so.
 */
async function timed(calls: EdgeCall[], route: string, run: () => Promise<Response>): Promise<Response> {
  const t0 = performance.now();
  let res = await run();
  let retries = 0;
  while (res.status === 503 && retries < 2) {
    const text = await res.clone().text();
    if (!text.includes('restarted')) break;
    retries++;
    res = await run();
  }
  calls.push({
    route,
    status: res.status,
    seconds: (performance.now() - t0) / 1000,
    note: retries > 0 ? `(sent again after ${retries} Worker reload(s)) ` : '',
  });
  return res;
}

async function failure(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const e = JSON.parse(text) as { error?: { code?: string; message?: string } };
    return `${res.status} ${e.error?.code ?? ''}: ${e.error?.message ?? ''}`.slice(0, 300);
  } catch {
    return `${res.status}: ${text.slice(0, 200)}`;
  }
}

function form(parts: Record<string, Uint8Array | string>): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (typeof value === 'string') f.append(name, value);
    else
      f.append(
        name,
        new Blob([value as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }),
        `${name}.nii.gz`,
      );
  }
  return f;
}

export async function callWorker(
  base: string,
  apiKey: string,
  cases: { segment: DemoCase | null; healthy: DemoCase | null },
  organ: OrganName,
  outDir: string,
  log: (m: string) => void,
  interrupted: () => boolean = () => false,
): Promise<EdgeResults> {
  await mkdir(outDir, { recursive: true });
  const auth = { authorization: `Bearer ${apiKey}` };
  const calls: EdgeCall[] = [];
  const results: EdgeResults = { calls, health: null, segment: null, synthesize: null, score: null };

  const health = await timed(calls, 'GET /health', () => fetch(`${base}/health`));
  if (health.ok) results.health = (await health.json()) as EdgeResults['health'];
  const denied = await timed(calls, 'GET /v1/models without a key', () => fetch(`${base}/v1/models`));
  await denied.body?.cancel();
  calls[calls.length - 1].note = denied.status === 401 ? 'refused as expected' : 'expected 401';

  if (cases.segment) {
    const c = cases.segment;
    const bytes = new Uint8Array(await readFile(c.image));
    const res = await timed(calls, 'POST /v1/segment', () =>
      fetch(`${base}/v1/segment?organ=${organ}&format=nifti`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream' },
        body: bytes,
      }),
    );
    const call = calls[calls.length - 1];
    if (res.ok) {
      const maskBytes = new Uint8Array(await res.arrayBuffer());
      await writeFile(join(outDir, `${c.id}_mask.nii.gz`), maskBytes);
      const mask = readNifti(maskBytes);
      const evaluation = scoreCase(mask, await readReference(c, organ));
      results.segment = { caseId: c.id, evaluation, image: readNifti(bytes), mask };
      call.note += `mask on the input grid; organ Dice ${evaluation.organ.dice.toFixed(3)}, tumor Dice ${evaluation.tumor.dice.toFixed(3)}`;
    } else {
      call.note += await failure(res);
    }
    log(`${call.route}: ${call.status} ${call.note} (${call.seconds.toFixed(1)} s)`);
  }

  if (cases.healthy && !interrupted()) {
    const c = cases.healthy;
    const image = new Uint8Array(await readFile(c.image));
    const label = new Uint8Array(await readFile(c.label));
    // The Worker sizes tumors in voxels of the input grid (FreeTumor's radii are 1.5 mm voxels):
    // on a coarse grid the smallest type keeps them at a real lesion's size.
    const spacing = Math.max(...spacingOf(readNifti(label).affine));
    const type = spacing >= 2.5 ? 'tiny' : 'small';
    const res = await timed(calls, 'POST /v1/synthesize', () =>
      fetch(`${base}/v1/synthesize`, {
        method: 'POST',
        headers: auth,
        body: form({ image, label, organ, type, count: '2', seed: '7', label_map: c.labelMap }),
      }),
    );
    const call = calls[calls.length - 1];
    if (res.ok) {
      const files = unzipSync(new Uint8Array(await res.arrayBuffer()));
      const summary = JSON.parse(new TextDecoder().decode(files['summary.json'])) as Record<string, unknown>;
      await writeFile(join(outDir, `${c.id}_synthetic_ct.nii.gz`), files['ct.nii.gz']);
      await writeFile(join(outDir, `${c.id}_synthetic_label.nii.gz`), files['label.nii.gz']);
      results.synthesize = {
        caseId: c.id,
        image: readNifti(files['ct.nii.gz']),
        label: readNifti(files['label.nii.gz']),
        summary,
      };
      call.note += `${String(summary.inputTumorVoxels)} synthetic tumor voxels`;
      log(`${call.route}: ${call.status} ${call.note} (${call.seconds.toFixed(1)} s)`);

      const scoreLabel = writeNifti(
        syntheticLabel(readNifti(label), results.synthesize.label, c.labelMap, organ),
        { datatype: 'uint8' },
      );
      const score = async (what: string, img: Uint8Array): Promise<ScoreAnswer | null> => {
        const r = await timed(calls, `POST /v1/score (${what})`, () =>
          fetch(`${base}/v1/score`, {
            method: 'POST',
            headers: auth,
            body: form({ image: img, label: scoreLabel, organ }),
          }),
        );
        const sc = calls[calls.length - 1];
        if (!r.ok) {
          sc.note += await failure(r);
          log(`${sc.route}: ${sc.status} ${sc.note}`);
          return null;
        }
        const a = (await r.json()) as ScoreAnswer;
        sc.note += `realism ${fmt(a.realism)}, detection ${fmt(a.detection)}, accepted ${a.accepted}`;
        log(`${sc.route}: ${sc.status} ${sc.note} (${sc.seconds.toFixed(1)} s)`);
        return a;
      };
      const synthetic = await score('synthetic tumor', files['ct.nii.gz']);
      // The same label on the untouched CT: the region holds no tumor, so both signals should drop.
      const control = interrupted() ? null : await score('control: no tumor inserted', image);
      if (synthetic && control) results.score = { synthetic, control };
    } else {
      call.note += await failure(res);
      log(`${call.route}: ${call.status} ${call.note}`);
    }
  }
  return results;
}

/**
 * The label /v1/score reads (merged scheme): 1 organ, 3 on the voxels /v1/synthesize turned into
 * tumor (where its label differs from the input's), 0 elsewhere.
 */
export function syntheticLabel(
  input: Volume,
  output: Volume,
  labelMap: string,
  organ: OrganName,
): Volume<Uint8Array> {
  const merged = toMergedScheme(input.data, parseLabelMap(labelMap), organ);
  const data = new Uint8Array(merged.length);
  for (let i = 0; i < data.length; i++) {
    if (output.data[i] !== input.data[i]) data[i] = 3;
    else if (merged[i] === 1) data[i] = 1;
  }
  return { ...input, data, datatype: 'uint8' };
}

function fmt(x: number | null): string {
  return x === null ? '-' : x.toFixed(3);
}
