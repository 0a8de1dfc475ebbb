/**
 * The edge API in the real runtime: the deployable bundle in workerd (Miniflare), R2 seeded with
 * models made by the project's own builder and exporter, every route, auth, limits and errors, and
 * the isolate's memory. One bundle and one Worker for the whole file (ORT's start-up is the slow part).
 */

import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, unzipSync } from 'fflate';
import * as ortNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtRunner, type OrtModule } from '../../shared/inference/ort-runner.ts';
import { segmentVolume } from '../../shared/inference/segment.ts';
import { parseLabelMap } from '../../shared/labels/labelmap.ts';
import { generatePhantom } from '../../shared/phantom/phantom.ts';
import { Rng } from '../../shared/random.ts';
import type { SynthesisType } from '../../shared/synthesis/tumors.ts';
import { synthesizeVolume } from '../../shared/synthesis/whole-volume.ts';
import { gzip } from '../../shared/volume/gzip.ts';
import { readNifti, writeNifti } from '../../shared/volume/nifti.ts';
import { makeVolume, type Volume } from '../../shared/volume/volume.ts';
import { TOTALSEG_CT, TOTALSEG_SEG } from '../shared-data.ts';
import { buildModelFixture, type ModelFixture, publish } from './fixtures.ts';
import {
  bearer,
  buildWorker,
  encodeForm,
  isolateHeap,
  KEYS,
  logArrives,
  ROOT,
  startWorker,
} from './harness.ts';

const BIN = join(ROOT, 'bin/freetumor.js');

const INSPECTOR_PORT = 9_400 + (process.pid % 500);
const MiB = 1024 * 1024;
/** Body limit of the test Worker: small so the 413 test does not push 32 MiB through. */
const MAX_BODY = 8 * MiB;

let mf: ReturnType<typeof startWorker>;
let bucket: Awaited<ReturnType<typeof mf.getR2Bucket>>;
let seg1: ModelFixture;
const logs: string[] = [];

type Init = { method?: string; headers?: Record<string, string>; body?: BodyInit };
async function call(path: string, init: Init = {}, key: string | null = KEYS.user): Promise<Response> {
  const headers = { ...(key ? bearer(key) : {}), ...init.headers };
  // Why the casts: Miniflare's fetch uses undici's Request/Response types, the same API as the DOM ones.
  const res = await mf.dispatchFetch(`http://edge.test${path}`, { ...init, headers } as never);
  return res as unknown as Response;
}
// biome-ignore lint/suspicious/noExplicitAny: response bodies are asserted field by field, any shape
type Json = Record<string, any>;
async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}
function niftiPost(path: string, body: Uint8Array, type = 'application/octet-stream') {
  return call(path, { method: 'POST', headers: { 'content-type': type }, body: body as BodyInit });
}
/** A multipart/form-data request (encoded in Node: Miniflare's fetch does not encode FormData). */
async function multipart(path: string, parts: Record<string, Uint8Array | string>): Promise<Response> {
  const f = new FormData();
  for (const [name, v] of Object.entries(parts)) {
    // A realistic file name: it must never reach the logs.
    if (typeof v === 'string') f.set(name, v);
    else f.set(name, new Blob([v as BlobPart]), `patient-0042-${name}.nii.gz`);
  }
  const { body, contentType } = await encodeForm(f);
  return call(path, { method: 'POST', headers: { 'content-type': contentType }, body: body as BodyInit });
}

/**
 * POST over plain node:http: the Worker answers 413 from the declared Content-Length before reading
 * the body, and closes the connection; fetch reports that as EPIPE, node:http delivers the response.
 */
async function rawPost(
  path: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, await mf.ready);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...bearer(KEYS.user), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', (e) => {
      if (!('code' in e) || (e.code !== 'EPIPE' && e.code !== 'ECONNRESET')) reject(e);
    });
    req.end(body);
  });
}

/** A small LPS-oriented phantom (cropped, 6 mm): geometry must come back exactly. */
/**
 * The Worker's synthesis against the CLI's (synthesizeVolume, what `freetumor synthesize` runs) on
 * the same files and seed: the .nii bytes of CT and label and the summary; returns the summary.
 */
function expectCliSynthesis(
  files: Record<string, Uint8Array>,
  ct: Uint8Array,
  label: Uint8Array,
  p: { organ: 'liver'; seed: number; labelMap?: string; type?: SynthesisType },
): Json {
  const whole = synthesizeVolume(
    readNifti(ct),
    readNifti(label),
    { organ: p.organ, labelMap: parseLabelMap(p.labelMap ?? 'freetumor'), type: p.type ?? 'random' },
    new Rng(p.seed),
  );
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  const description = { ct: 'freetumor synthetic CT (HU)', label: 'freetumor labels + synthetic tumor' };
  expect(
    same(
      gunzipSync(files['ct.nii.gz']),
      writeNifti(whole.image, { gzip: false, description: description.ct }),
    ),
  ).toBe(true);
  expect(
    same(
      gunzipSync(files['label.nii.gz']),
      writeNifti(whole.label, { gzip: false, description: description.label }),
    ),
  ).toBe(true);
  const { labelMapFrom, ...summary } = JSON.parse(new TextDecoder().decode(files['summary.json']));
  expect(summary).toEqual({ seed: p.seed, ...whole.summary });
  // How the map was chosen: the field as given, else the scheme detected from the label's ids.
  expect(labelMapFrom).toMatch(p.labelMap ? /^label_map / : /^detected from label ids /);
  return { ...summary, labelMapFrom };
}

let phantomCache: ReturnType<typeof makePhantomInputs> | null = null;
/** The NIfTI label with its first voxel set to `id` (an id outside FreeTumor's scheme). */
function withId(label: Uint8Array, id: number): Uint8Array {
  const v = readNifti(label);
  const data = Uint8Array.from(v.data);
  data[0] = id;
  return writeNifti(makeVolume(v.dims, data, v.affine, 'uint8'));
}

function phantomInputs() {
  phantomCache ??= makePhantomInputs();
  return phantomCache;
}
function makePhantomInputs(): { ct: Uint8Array; label: Uint8Array; volume: Volume } {
  const p = generatePhantom({ seed: 3, spacing: 6, size: [44, 36, 24], noiseHU: 0 });
  const ct = p.ct;
  const lps = Float64Array.from(ct.affine);
  for (const i of [0, 5]) lps[i] = -lps[i];
  lps[3] = 40;
  lps[7] = -12;
  const vol = makeVolume(ct.dims, ct.data, lps, 'int16');
  const label = makeVolume(p.label.dims, p.label.data, lps, 'uint8');
  return { ct: writeNifti(vol), label: writeNifti(label), volume: vol };
}

/**
 * The isolate's memory after a request: ORT's wasm linear memory (it only grows) plus the V8 heap
 * (inspector). Cloudflare's limit is 128 MB per isolate; the budget asserted leaves a third free.
 */
async function expectMemoryUnderBudget(what: string): Promise<void> {
  const h = await json(await call('/health', {}, null));
  const heap = await isolateHeap(INSPECTOR_PORT);
  const wasm = h.isolate.wasmMemoryBytes as number;
  console.log(
    JSON.stringify({
      memory: what,
      wasmMiB: +(wasm / MiB).toFixed(1),
      heapUsedMiB: +(heap.usedSize / MiB).toFixed(1),
      heapTotalMiB: +(heap.totalSize / MiB).toFixed(1),
    }),
  );
  expect(wasm + heap.totalSize).toBeLessThan(85 * MiB);
}

beforeAll(async () => {
  const bundle = buildWorker('dist/edge-test-api');
  mf = startWorker(bundle, {
    inspectorPort: INSPECTOR_PORT,
    onLog: (m) => logs.push(m),
    vars: {
      MAX_BODY_BYTES: String(MAX_BODY),
      MAX_VOXELS: '4000000',
      MAX_DECOMPRESSED_BYTES: String(24 * MiB),
      MAX_SLICES: '1024',
    },
  });
  [seg1] = await Promise.all([buildModelFixture({ version: 'v1', seed: 1, int8: true }), mf.ready]);
  bucket = await mf.getR2Bucket('MODELS');
});

afterAll(async () => {
  await mf?.dispose();
});

describe('edge API in workerd', () => {
  it('answers 503 before any model is published, and health stays up', async () => {
    const h = await call('/health', {}, null);
    expect(h.status).toBe(200);
    // Alive (200), but nothing to serve: not 'ok'.
    expect(await json(h)).toMatchObject({ status: 'unpublished', models: {}, states: {} });
    const m = await call('/v1/models');
    expect(m.status).toBe(503);
    expect((await json(m)).error.code).toBe('model_unavailable');
    const s = await niftiPost('/v1/segment', phantomInputs().ct);
    expect(s.status).toBe(503);
  });

  it('authenticates every /v1 route (401) and scopes admin routes (403)', async () => {
    for (const [path, method] of [
      ['/v1/models', 'GET'],
      ['/v1/segment', 'POST'],
      ['/v1/score', 'POST'],
      ['/v1/synthesize', 'POST'],
      ['/v1/admin/retrain', 'POST'],
    ]) {
      for (const key of [null, 'not-a-key']) {
        const r = await call(path, { method }, key);
        expect(r.status, `${method} ${path}`).toBe(401);
        expect((await json(r)).error.code).toBe('unauthorized');
      }
    }
    const forbidden = await call('/v1/admin/retrain', { method: 'POST' }, KEYS.user);
    expect(forbidden.status).toBe(403);
    const unconfigured = await call('/v1/admin/retrain', { method: 'POST' }, KEYS.admin);
    expect(unconfigured.status).toBe(501);
    expect((await json(unconfigured)).error.message).toMatch(/not configured/);
  });

  it('the cron handler picks up the published model and warms its session', async () => {
    await publish(bucket as never, [seg1]);
    const worker = await mf.getWorker();
    // Why the cast: Miniflare's Fetcher type lacks the scheduled() it implements.
    const outcome = await (
      worker as unknown as { scheduled(o: { cron: string }): Promise<{ outcome: string }> }
    ).scheduled({ cron: '*/30 * * * *' });
    expect(outcome.outcome).toBe('ok');
    const h = await json(await call('/health', {}, null));
    expect(h.models).toEqual({ segmentor: 'v1' });
    expect(h.isolate.sessions).toBe(1);
    expect(h.isolate.wasmMemoryBytes).toBeGreaterThan(0);
    const m = await json(await call('/v1/models'));
    expect(m.models.segmentor.version).toBe('v1');
    expect(m.models.segmentor.files.map((f: { precision: string }) => f.precision)).toEqual(['int8', 'fp32']);
  });

  it('segments a phantom: a uint8 mask on the input grid, equal to the same pipeline on onnxruntime-node', async () => {
    const { ct, volume } = phantomInputs();
    const res = await niftiPost('/v1/segment', ct);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('x-model-version')).toBe('v1');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const mask = readNifti(new Uint8Array(await res.arrayBuffer()));
    expect(mask.dims).toEqual(volume.dims);
    expect([...mask.affine]).toEqual([...volume.affine]);
    expect(mask.datatype).toBe('uint8');
    expect(mask.data.every((v) => v <= 2)).toBe(true);

    const int8 = seg1.objects.get('models/segmentor/v1/model.int8.onnx')!;
    const runner = await createOrtRunner(ortNode as unknown as OrtModule, int8, { intraOpNumThreads: 1 });
    const node = await segmentVolume(readNifti(ct), seg1.manifest, runner, { organ: 'liver' });
    await runner.release?.();
    let same = 0;
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === node.mask.data[i]) same++;
    // wasm and native kernels may round differently: ties in argmax can flip a few voxels.
    expect(same / mask.data.length).toBeGreaterThan(0.999);
    const classes = new Set(node.mask.data);
    expect(classes.size).toBeGreaterThan(1);
    await expectMemoryUnderBudget('phantom');

    const j = await niftiPost('/v1/segment?format=json&organ=liver', ct);
    expect(j.status).toBe(200);
    const body = await json(j);
    expect(body.dims).toEqual(volume.dims);
    expect(body.model).toEqual({ name: 'edge-test-segmentor', version: 'v1' });
    let organ = 0;
    for (const v of mask.data) if (v === 1) organ++;
    expect(body.organVoxels).toBe(organ);
    expect(body.lesions.length).toBe(node.lesions.length);
  });

  it('synthesizes into the phantom liver (multipart/mixed and zip) and scores the result', async () => {
    const { ct, label, volume } = phantomInputs();
    const res = await multipart('/v1/synthesize', {
      image: ct,
      label,
      organ: 'liver',
      seed: '3',
      format: 'multipart',
    });
    expect(res.status).toBe(200);
    const boundary = /^multipart\/mixed; boundary=(\S+)$/.exec(res.headers.get('content-type') ?? '')?.[1];
    expect(boundary).toBeDefined();
    const text = new TextDecoder('latin1').decode(new Uint8Array(await res.arrayBuffer()));
    const names = [...text.matchAll(/filename="([^"]+)"/g)].map((m) => m[1]);
    expect(names).toEqual(['ct.nii.gz', 'label.nii.gz', 'summary.json']);
    expect(text.trimEnd().endsWith(`--${boundary}--`)).toBe(true);

    // The image first: held (compressed) until the body ends, then synthesized.
    const zip = await multipart('/v1/synthesize', { image: ct, label, organ: 'liver', seed: '3' });
    const files = unzipSync(new Uint8Array(await zip.arrayBuffer()));
    const summary = expectCliSynthesis(files, ct, label, { organ: 'liver', seed: 3 });
    // Fields and label first: the image streams through; the same bytes.
    const streamed = await multipart('/v1/synthesize', { organ: 'liver', seed: '3', label, image: ct });
    expect(streamed.status).toBe(200);
    expectCliSynthesis(unzipSync(new Uint8Array(await streamed.arrayBuffer())), ct, label, {
      organ: 'liver',
      seed: 3,
    });
    // And the CLI process itself: the same CT, label and summary (its summary adds the time).
    const dir = await mkdtemp(join(tmpdir(), 'ft-edge-synth-'));
    try {
      await writeFile(join(dir, 'ct.nii.gz'), ct);
      await writeFile(join(dir, 'label.nii.gz'), label);
      const cli = spawnSync(
        process.execPath,
        [BIN, 'synthesize', '--image', join(dir, 'ct.nii.gz'), '--label', join(dir, 'label.nii.gz')].concat([
          '--organ',
          'liver',
          '--seed',
          '3',
          '--out',
          join(dir, 'out'),
        ]),
        { encoding: 'utf8' },
      );
      expect(cli.status).toBe(0);
      for (const f of ['ct.nii.gz', 'label.nii.gz'])
        expect(
          Buffer.from(gunzipSync(files[f])).equals(gunzipSync(await readFile(join(dir, 'out', f)))),
        ).toBe(true);
      // The CLI's summary adds its time; the map is detected from the ids by both.
      const { seconds: _, ...cliSummary } = JSON.parse(
        await readFile(join(dir, 'out', 'summary.json'), 'utf8'),
      );
      expect(cliSummary.labelMapFrom).toBe('detected from label ids 1-5');
      expect(summary).toEqual(cliSummary);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(summary).toMatchObject({ organ: 'liver', seed: 3, tumorLabel: 2, type: 'random' });
    expect(summary.inputTumorVoxels).toBeGreaterThan(0);
    // `liver=1` invents tumor id 2, which this label holds: the ids the Worker gathered to check the
    // map choose largest + 1 (no second id scan in the plan), as the CLI does.
    const clash = withId(label, 2);
    const invented = await multipart('/v1/synthesize', {
      organ: 'liver',
      seed: '3',
      label_map: 'liver=1',
      label: clash,
      image: ct,
    });
    expect(invented.status).toBe(200);
    const inventedSummary = expectCliSynthesis(
      unzipSync(new Uint8Array(await invented.arrayBuffer())),
      ct,
      clash,
      {
        organ: 'liver',
        seed: 3,
        labelMap: 'liver=1',
      },
    );
    expect(inventedSummary).toMatchObject({ tumorLabel: 6, tumorLabelAssigned: true });
    // The CLI's summary: every tumor has its volume in ml.
    for (const t of summary.tumors) expect(t.volumeMl).toBeGreaterThan(0);
    const outLabel = readNifti(files['label.nii.gz']);
    expect(outLabel.dims).toEqual(volume.dims);
    // FreeTumor scheme: 1 liver, 2 liver tumor; the merged scheme for scoring keeps only the liver.
    const merged = makeVolume(
      outLabel.dims,
      Uint8Array.from(outLabel.data, (v) => (v === 2 ? 2 : v === 1 ? 1 : 0)),
      outLabel.affine,
      'uint8',
    );
    const score = await multipart('/v1/score', { image: files['ct.nii.gz'], label: writeNifti(merged) });
    expect(score.status).toBe(200);
    const s = await json(score);
    expect(s.model).toEqual({ segmentor: 'v1' });
    expect(s.detection).toBeGreaterThanOrEqual(0);
    expect(s.detection).toBeLessThanOrEqual(1);
    expect(s.realism).toBeNull();
    expect(s.threshold).toEqual({ detection: 0.7, realism: 0.5, policy: 'segmentor' });
    expect(s.accepted).toBe(s.detection >= s.threshold.detection);
  });

  it('cuts a streamed synthesis when a field follows the image (it would have changed the result)', async () => {
    const { ct, label } = phantomInputs();
    logs.length = 0;
    const res = await multipart('/v1/synthesize', { organ: 'liver', label, image: ct, seed: '5' });
    expect(res.status).toBe(200);
    const body = await res.arrayBuffer().then(
      (b) => new Uint8Array(b),
      () => null,
    );
    // Either the transfer fails or what arrived is not a whole archive: never a silent success.
    if (body) expect(() => unzipSync(body)).toThrow();
    expect(
      await logArrives(logs, (l) => l.includes('synthesize_stream_failed') && l.includes('invalid_argument')),
    ).toBe(true);
    // The gate was released: the next request is served.
    const ok = await multipart('/v1/synthesize', { organ: 'liver', seed: '5', label, image: ct });
    expect(ok.status).toBe(200);
    expect(Object.keys(unzipSync(new Uint8Array(await ok.arrayBuffer())))).toHaveLength(3);
  });

  describe.skipIf(!TOTALSEG_CT || !TOTALSEG_SEG)('real 3 mm CT (TotalSegmentator example)', () => {
    it('segments it within the memory budget', async () => {
      const ct = new Uint8Array(await readFile(TOTALSEG_CT!));
      const input = readNifti(ct);
      const res = await niftiPost('/v1/segment', ct);
      expect(res.status).toBe(200);
      const mask = readNifti(new Uint8Array(await res.arrayBuffer()));
      expect(mask.dims).toEqual(input.dims);
      expect([...mask.affine]).toEqual([...input.affine]);
      await expectMemoryUnderBudget('3 mm real CT');
    });

    it('synthesizes a liver tumor (zip) deterministically, leaving untouched voxels exact', async () => {
      const ct = new Uint8Array(await readFile(TOTALSEG_CT!));
      const seg = new Uint8Array(await readFile(TOTALSEG_SEG!));
      const params = { organ: 'liver', label_map: 'liver=5,liver_tumor=200', type: 'medium', seed: '7' };
      // Fields, label, then the image (streamed through).
      const send = () => multipart('/v1/synthesize', { ...params, label: seg, image: ct });
      const res = await send();
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/zip');
      const zip = new Uint8Array(await res.arrayBuffer());
      const files = unzipSync(zip);
      expect(Object.keys(files).sort()).toEqual(['ct.nii.gz', 'label.nii.gz', 'summary.json']);
      const input = readNifti(ct);
      const outCt = readNifti(files['ct.nii.gz']);
      const outLabel = readNifti(files['label.nii.gz']);
      const summary = JSON.parse(new TextDecoder().decode(files['summary.json']));
      expect(outCt.dims).toEqual(input.dims);
      expect([...outCt.affine]).toEqual([...input.affine]);
      expect(outCt.datatype).toBe(input.datatype);
      expect(summary.inputTumorVoxels).toBeGreaterThan(0);
      let tumor = 0;
      let changedOutside = 0;
      for (let i = 0; i < input.data.length; i++) {
        const isTumor = outLabel.data[i] === summary.tumorLabel;
        if (isTumor) tumor++;
        else if (outCt.data[i] !== input.data[i] && outLabel.data[i] !== 5) changedOutside++;
      }
      expect(tumor).toBe(summary.inputTumorVoxels);
      expect(changedOutside).toBe(0);
      expectCliSynthesis(files, ct, seg, {
        organ: 'liver',
        labelMap: 'liver=5,liver_tumor=200',
        type: 'medium',
        seed: 7,
      });
      const again = new Uint8Array(await (await send()).arrayBuffer());
      // Same seed, same tumor (compared as voxels: the gzip header carries a time stamp).
      expect(readNifti(unzipSync(again)['label.nii.gz']).data).toEqual(outLabel.data);
      // Without label_map the TotalSegmentator scheme is detected from the ids (never FreeTumor's,
      // whose liver is id 1, the spleen here): the tumor lies inside TotalSegmentator's liver (5).
      const { label_map: _, ...detectParams } = params;
      const detected = unzipSync(
        new Uint8Array(
          await (await multipart('/v1/synthesize', { ...detectParams, label: seg, image: ct })).arrayBuffer(),
        ),
      );
      const detectedSummary = JSON.parse(new TextDecoder().decode(detected['summary.json']));
      expect(detectedSummary.labelMap).toMatch(/^totalseg/);
      expect(detectedSummary.labelMapFrom).toMatch(/^detected from label ids 1-/);
      const detectedLabel = readNifti(detected['label.nii.gz']).data;
      const inputLabel = readNifti(seg).data;
      let inLiver = 0;
      let outside = 0;
      for (let i = 0; i < detectedLabel.length; i++) {
        if (detectedLabel[i] !== detectedSummary.tumorLabel) continue;
        if (inputLabel[i] === 5) inLiver++;
        else outside++;
      }
      expect(inLiver).toBeGreaterThan(0);
      expect(outside).toBe(0);
    });
  });

  it('answers every bad input with the right JSON error, then still serves a valid request', async () => {
    const { ct, label } = phantomInputs();
    const header = readNifti(ct);
    const bytesOf = (dims: [number, number, number], datatype: 'int16' | 'float64') => {
      // A valid header over a tiny payload: the reader must refuse from the header's numbers.
      const small = writeNifti(makeVolume([2, 2, 2], new Int16Array(8), header.affine, 'int16'), {
        gzip: false,
      });
      const view = new DataView(small.buffer, small.byteOffset);
      for (const [i, d] of dims.entries()) view.setInt16(42 + 2 * i, d, true);
      if (datatype === 'float64') {
        view.setInt16(70, 64, true);
        view.setInt16(72, 64, true);
      }
      return small;
    };
    const bomb = (() => {
      // 40 MiB of zeros after a header claiming 1100 slices: refused from the header, before inflating.
      const raw = new Uint8Array(352 + 40 * MiB);
      raw.set(bytesOf([16, 16, 1100], 'float64').subarray(0, 352));
      return gzip(raw, 9);
    })();
    expect(bomb.byteLength).toBeLessThan(200_000);

    const cases: Array<[string, () => Promise<Response>, number, string]> = [
      [
        'random bytes',
        () => niftiPost('/v1/segment', crypto.getRandomValues(new Uint8Array(4096))),
        400,
        'invalid_nifti',
      ],
      [
        'truncated file',
        () => niftiPost('/v1/segment', writeNifti(header, { gzip: false }).subarray(0, 5000)),
        400,
        'truncated',
      ],
      ['gzip bomb over the slice limit', () => niftiPost('/v1/segment', bomb), 413, 'too_large'],
      [
        'in-plane size over the limit',
        () => niftiPost('/v1/segment', bytesOf([1100, 16, 2], 'int16')),
        413,
        'too_large',
      ],
      [
        'too many voxels',
        () => niftiPost('/v1/segment', bytesOf([400, 400, 400], 'int16')),
        413,
        'too_large',
      ],
      ['wrong content type', () => niftiPost('/v1/segment', ct, 'text/plain'), 415, 'unsupported_media_type'],
      ['unknown organ', () => niftiPost('/v1/segment?organ=brain', ct), 400, 'invalid_argument'],
      ['organ the model lacks', () => niftiPost('/v1/segment?organ=kidney', ct), 422, 'invalid_organ'],
      ['bad format', () => niftiPost('/v1/segment?format=png', ct), 400, 'invalid_argument'],
      ['score not multipart', () => niftiPost('/v1/score', ct), 415, 'unsupported_media_type'],
      ['score without label', () => multipart('/v1/score', { image: ct }), 400, 'missing_part'],
      [
        'synthesize without organ',
        () => multipart('/v1/synthesize', { image: ct, label }),
        400,
        'invalid_argument',
      ],
      [
        'synthesize with a bad label map',
        () => multipart('/v1/synthesize', { image: ct, label, organ: 'liver', label_map: 'brain=4' }),
        400,
        'invalid_label_map',
      ],
      [
        'synthesize with a label map the ids do not fit',
        () =>
          multipart('/v1/synthesize', {
            image: ct,
            label: withId(label, 50),
            organ: 'liver',
            label_map: 'freetumor',
          }),
        400,
        'invalid_label_map',
      ],
      [
        'synthesize into an empty organ',
        () => multipart('/v1/synthesize', { image: ct, label, organ: 'liver', label_map: 'liver=99' }),
        422,
        'empty_organ',
      ],
      [
        'grids that differ',
        () => multipart('/v1/synthesize', { image: ct, label: bytesOf([2, 2, 2], 'int16'), organ: 'liver' }),
        422,
        'invalid_geometry',
      ],
      ['unknown route', () => call('/v1/nothing'), 404, 'not_found'],
    ];
    for (const [name, send, status, code] of cases) {
      const res = await send();
      const body = await json(res);
      expect({ name, status: res.status, code: body.error?.code }).toEqual({ name, status, code });
      expect(typeof body.error.message).toBe('string');
      expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(js|ts):\d+/);
    }
    const big = new Uint8Array(MAX_BODY + 1);
    const over = await rawPost(
      '/v1/segment',
      { 'content-type': 'application/octet-stream', 'content-length': String(big.byteLength) },
      big,
    );
    expect(over.status).toBe(413);
    expect(JSON.parse(over.body).error.message).toMatch(/request body bytes/);
    const ok = await niftiPost('/v1/segment?format=json', ct);
    expect(ok.status).toBe(200);
    expect((await json(await call('/health', {}, null))).status).toBe('ok');
  });

  it('never logs file names or query values; logs request ids, sizes and timings', async () => {
    expect(logs.length).toBeGreaterThan(10);
    const all = logs.join('\n');
    expect(all).not.toMatch(/patient-0042/);
    expect(all).not.toMatch(/organ=|liver=5/);
    const line = JSON.parse(logs.find((l) => l.includes('"/v1/segment"'))!);
    expect(Object.keys(line).sort()).toEqual([
      'bytesIn',
      'bytesOut',
      'method',
      'ms',
      'path',
      'requestId',
      'status',
    ]);
  });

  it('refuses a model whose bytes do not match the manifest, and recovers once they do', async () => {
    // Published with 96^3 windows: the Worker must run them as 64^3 (MAX_PATCH_SIDE) to stay in memory.
    const v3 = await buildModelFixture({ version: 'v3', seed: 3, patchSize: [96, 96, 96] });
    const good = v3.objects.get('models/segmentor/v3/model.fp32.onnx')!;
    const bad = new Map(v3.objects);
    const corrupt = Uint8Array.from(good);
    corrupt[corrupt.length - 1] ^= 0xff;
    bad.set('models/segmentor/v3/model.fp32.onnx', corrupt);
    await publish(bucket as never, [{ ...v3, objects: bad }]);
    await new Promise((r) => setTimeout(r, 1100)); // the pointer TTL of the test Worker is 1 s
    const { ct } = phantomInputs();
    const refused = await niftiPost('/v1/segment?format=json', ct);
    expect(refused.status).toBe(503);
    expect((await json(refused)).error.code).toBe('model_integrity');
    await bucket.put('models/segmentor/v3/model.fp32.onnx', new Uint8Array(good));
    const ok = await niftiPost('/v1/segment?format=json', ct);
    expect(ok.status).toBe(200);
    expect((await json(ok)).model.version).toBe('v3');
    const worker = await mf.getWorker();
    await (worker as unknown as { scheduled(o: { cron: string }): Promise<unknown> }).scheduled({
      cron: '*/30 * * * *',
    });
    const h = await json(await call('/health', {}, null));
    expect(h.models).toEqual({ segmentor: 'v3' });
    expect(h.isolate.sessions).toBe(1);
    expect(h.isolate.wasmMemoryBytes).toBeLessThan(80 * MiB);
  });

  it('serves the OpenAPI document of every route', async () => {
    const doc = await json(await call('/openapi.json', {}, null));
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/health',
      '/v1/admin/retrain',
      '/v1/models',
      '/v1/score',
      '/v1/segment',
      '/v1/synthesize',
    ]);
    expect(doc.paths['/v1/segment'].post.requestBody.content['application/octet-stream']).toBeDefined();
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
  });
});
