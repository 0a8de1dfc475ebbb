/**
 * Full-resolution CTs through the deployable Worker in workerd: 512 x 512 x 129 / 300 / 1000 CTs
 * (real slices, generated on the fly) stream through /v1/segment with the demo's model size (U-Net
 * 8-16-32, 24^3 windows at 3 mm, int8). The isolate's memory is sampled while each request runs
 * (V8 heap + backing stores through the inspector, ORT's wasm memory from /health) and must stay
 * within Cloudflare's 128 MB; the mask must come back on the input grid with its affine, and agree
 * with the whole-volume pipeline on onnxruntime-node.
 */
import * as ortNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtRunner, type OrtModule } from '../../shared/inference/ort-runner.ts';
import { segmentVolume } from '../../shared/inference/segment.ts';
import { readNifti } from '../../shared/volume/nifti.ts';
import { gzipStream } from '../../shared/volume/nifti-write-stream.ts';
import { buildModelFixture, type ModelFixture, publish } from './fixtures.ts';
import { ballLabel, fullResCt, multipartBody } from './fullres-ct.ts';
import { bearer, buildWorker, KEYS, startWorker } from './harness.ts';
import { cpuSeconds, IsolateInspector, mib, sampleHeap, workerdPids } from './probe.ts';

const INSPECTOR_PORT = 9_900 + (process.pid % 90);
const MiB = 1024 * 1024;
/** Cloudflare's isolate memory limit. */
const ISOLATE_LIMIT = 128 * MiB;

let mf: ReturnType<typeof startWorker>;
let fixture: ModelFixture;
let inspector: IsolateInspector;

beforeAll(async () => {
  mf = startWorker(buildWorker('dist/edge-test-fullres'), {
    inspectorPort: INSPECTOR_PORT,
    vars: { MAX_BODY_BYTES: String(1024 * MiB) },
    onLog: (m) => process.env.EDGE_LOG && console.log(m),
  });
  // The demo's model: U-Net widths 8-16-32, instance norm, 24^3 windows at 3 mm, int8 weights.
  fixture = await buildModelFixture({ version: 'full1', seed: 4, int8: true, patchSize: [24, 24, 24] });
  await mf.ready;
  await publish((await mf.getR2Bucket('MODELS')) as never, [fixture]);
  inspector = new IsolateInspector(INSPECTOR_PORT);
});

afterAll(async () => {
  inspector?.close();
  await mf?.dispose();
});

async function segment(slices: number, sliceMm: number, gzip: boolean) {
  const ct = fullResCt(slices, sliceMm);
  const body = gzip ? gzipStream(ct.stream()) : ct.stream();
  const pid = workerdPids()[0];
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const sampler = sampleHeap(inspector);
  const t0 = performance.now();
  const res = (await mf.dispatchFetch('http://edge.test/v1/segment', {
    method: 'POST',
    headers: { ...bearer(KEYS.user), 'content-type': 'application/octet-stream' },
    body,
    duplex: 'half',
  } as never)) as unknown as Response;
  const bytes = new Uint8Array(await res.arrayBuffer());
  const seconds = (performance.now() - t0) / 1000;
  const heap = await sampler.stop();
  const cpu = pid ? cpuSeconds(pid) - cpu0 : Number.NaN;
  const health = (await (await mf.dispatchFetch('http://edge.test/health')).json()) as {
    isolate: { wasmMemoryBytes: number };
  };
  const wasm = health.isolate.wasmMemoryBytes;
  const isolate = wasm + heap.totalSize + heap.backingStorageSize;
  console.log(
    JSON.stringify({
      ct: `512x512x${slices} @ ${sliceMm} mm (${ct.source}${gzip ? ', gzip' : ''})`,
      status: res.status,
      seconds: +seconds.toFixed(1),
      workerdCpuSeconds: +cpu.toFixed(1),
      peakHeapTotalMiB: mib(heap.totalSize),
      peakBackingStoreMiB: mib(heap.backingStorageSize),
      wasmMiB: mib(wasm),
      isolateMiB: mib(isolate),
    }),
  );
  return { res, bytes, ct, isolate };
}

describe('full-resolution CT through /v1/segment (streaming)', () => {
  it('512x512x129 (gzip): 200, a mask on the input grid, equal to the whole-volume pipeline on ort-node', async () => {
    const { res, bytes, ct, isolate } = await segment(129, 2.5, true);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    const mask = readNifti(bytes);
    expect(mask.dims).toEqual(ct.dims);
    expect(mask.datatype).toBe('uint8');
    expect(isolate).toBeLessThan(ISOLATE_LIMIT);
    // The reference: the whole volume in memory, the same int8 model on onnxruntime-node.
    const int8 = fixture.objects.get('models/segmentor/full1/model.int8.onnx') as Uint8Array;
    const runner = await createOrtRunner(ortNode as unknown as OrtModule, int8, { intraOpNumThreads: 1 });
    const vol = ct.volume();
    const whole = await segmentVolume({ ...vol, affine: mask.affine }, fixture.manifest, runner, {});
    await runner.release?.();
    expect([...mask.affine]).toEqual([...whole.mask.affine]);
    let same = 0;
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === whole.mask.data[i]) same++;
    expect(same / mask.data.length).toBeGreaterThan(0.999);
    expect(new Set(whole.mask.data).size).toBeGreaterThan(1);
  }, 300_000);

  it('scores a synthetic tumor on a 512x512x129 CT from its QC crop (label first, both parts streamed)', async () => {
    const ct = fullResCt(129, 2.5);
    const { body, contentType } = multipartBody([
      ['label', ballLabel(ct).stream()],
      ['image', gzipStream(ct.stream())],
    ]);
    const res = (await mf.dispatchFetch('http://edge.test/v1/score', {
      method: 'POST',
      headers: { ...bearer(KEYS.user), 'content-type': contentType },
      body,
      duplex: 'half',
    } as never)) as unknown as Response;
    const s = (await res.json()) as {
      detection: number;
      accepted: boolean;
      threshold: { detection: number };
    };
    expect(res.status).toBe(200);
    expect(s.detection).toBeGreaterThanOrEqual(0);
    expect(s.detection).toBeLessThanOrEqual(1);
    expect(s.accepted).toBe(s.detection > s.threshold.detection);
  }, 300_000);

  it('512x512x300 stays within the isolate limit', async () => {
    const { res, bytes, isolate } = await segment(300, 1.25, false);
    expect(res.status).toBe(200);
    expect(readNifti(bytes).dims).toEqual([512, 512, 300]);
    expect(isolate).toBeLessThan(ISOLATE_LIMIT);
  }, 300_000);

  it('512x512x1000 stays within the isolate limit', async () => {
    const { res, bytes, isolate } = await segment(1000, 0.6, false);
    expect(res.status).toBe(200);
    expect(readNifti(bytes).dims).toEqual([512, 512, 1000]);
    expect(isolate).toBeLessThan(ISOLATE_LIMIT);
  }, 600_000);
});
