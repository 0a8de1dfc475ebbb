/**
 * `npm run bench -- edge`: the edge API on the local Worker (the deploy bundle in workerd through
 * Miniflare, R2 seeded with a model exported by the project's own exporter) against the same
 * pipeline on onnxruntime-node (1 thread, in this process) with the same model file, in the same run:
 * every route on a 96^3 phantom volume and on the real 3 mm CT, cold start, and 8 concurrent requests.
 * Worker times are HTTP round trips (body transfer included); workerd runs ORT's wasm, single thread.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { WORKER_SESSION_OPTIONS } from '../edge/ort-options.ts';
import { fitPatch } from '../edge/patch.ts';
import {
  createOrtRunner,
  type OrtModule,
  type OrtRunner,
  type OrtSessionOptions,
} from '../shared/inference/ort-runner.ts';
import { scoreSynthetic } from '../shared/inference/quality.ts';
import { segmentVolume } from '../shared/inference/segment.ts';
import { segmentNiftiStream } from '../shared/inference/stream-segment.ts';
import { windowHU } from '../shared/intensity/window.ts';
import { parseLabelMap, toMergedScheme } from '../shared/labels/labelmap.ts';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { Rng } from '../shared/random.ts';
import { synthesize } from '../shared/synthesis/index.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';
import { makeVolume, spacingOf, type Volume } from '../shared/volume/volume.ts';
import { buildModelFixture, publish } from '../test/edge/fixtures.ts';
import { ballLabel, fullResCt, multipartBody } from '../test/edge/fullres-ct.ts';
import { bearer, buildWorker, encodeForm, KEYS, startWorker } from '../test/edge/harness.ts';
import { cpuSeconds, IsolateInspector, sampleHeap, workerdPids } from '../test/edge/probe.ts';
import { type BenchContext, type BenchResult, result, timeMedian } from './harness.ts';

const GROUP = 'edge';
const HERE = dirname(fileURLToPath(import.meta.url));
const MiB = 1024 * 1024;

interface Case {
  name: string;
  ct: Uint8Array;
  /** Merged-scheme label (0 bg, 1 organ, 2 synthetic tumor) for /v1/score. */
  scoreLabel: Uint8Array;
  /** Organ label and its map for /v1/synthesize. */
  organLabel: Uint8Array;
  labelMap: string;
}

/** A 96^3 volume at the model's 3 mm spacing: exactly one sliding window. */
function patchCase(): Case {
  const p = generatePhantom({ seed: 11, spacing: 3, size: [96, 96, 96], noiseHU: 12 });
  return fromVolumes('96^3 phantom', p.ct, p.label, 'freetumor');
}

function fromVolumes(name: string, ct: Volume, label: Volume, labelMap: string): Case {
  const merged = toMergedScheme(label.data, parseLabelMap(labelMap), 'liver');
  const synth = synthesize(
    { image: windowHU(ct.data, -175, 250), label: merged, dims: ct.dims, spacing: spacingOf(ct.affine) },
    { type: 'medium', count: 1, organ: 'liver' },
    new Rng(3),
  );
  const scoreLabel = Uint8Array.from(synth.plan.label, (v) => (v === 3 ? 2 : v));
  return {
    name,
    ct: writeNifti(ct),
    scoreLabel: writeNifti(makeVolume(label.dims, scoreLabel, label.affine, 'uint8')),
    organLabel: writeNifti(label),
    labelMap,
  };
}

export async function* run(ctx: BenchContext): AsyncIterable<BenchResult> {
  const reps = ctx.quick ? 2 : 5;
  const cases = [patchCase()];
  if (ctx.sharedData) {
    const ct = readNifti(readFileSync(`${ctx.sharedData}/totalseg-example/example_ct.nii.gz`));
    const seg = readNifti(readFileSync(`${ctx.sharedData}/totalseg-example/example_seg_v1_full.nii.gz`));
    cases.push(fromVolumes('3 mm real CT', ct, seg, 'liver=5,liver_tumor=200'));
  }
  ctx.log('edge: exporting the model and building the Worker bundle');
  // A 96^3 patch in the manifest; widths 8/16/32 (the tiny edge net).
  const fixture = await buildModelFixture({ version: 'bench', seed: 1, patchSize: [96, 96, 96] });
  // The Worker runs 96^3 windows as 64^3 (MAX_PATCH_SIDE); Node runs the same windows.
  const manifest = fitPatch(fixture.manifest, 64);
  const fp32Only = new Map([...fixture.objects].filter(([k]) => !k.endsWith('int8.onnx')));
  const bundle = buildWorker('dist/edge-bench');

  // Cold start: workerd up with the 14 MB wasm module, then the first request (R2 read, sha256, session).
  const t0 = performance.now();
  // The concurrency row queues 8 requests on purpose: no queue wait limit here.
  const mf = startWorker(bundle, {
    vars: { MAX_BODY_BYTES: String(64 * MiB), LATEST_TTL_SECONDS: '3600', QUEUE_WAIT_MS: '3600000' },
  });
  await mf.ready;
  const startupMs = performance.now() - t0;
  await publish((await mf.getR2Bucket('MODELS')) as never, [{ ...fixture, objects: fp32Only }]);
  const post = async (path: string, payload: Uint8Array | FormData, type?: string) => {
    const { body, contentType } =
      payload instanceof FormData ? await encodeForm(payload) : { body: payload, contentType: type! };
    return mf.dispatchFetch(`http://edge.bench${path}`, {
      method: 'POST',
      headers: { ...bearer(KEYS.user), 'content-type': contentType },
      body,
    } as never);
  };
  const get = (path: string) =>
    mf.dispatchFetch(`http://edge.bench${path}`, { headers: bearer(KEYS.user) } as never);
  const ok = async (res: Awaited<ReturnType<typeof get>>) => {
    if (res.status !== 200) throw new Error(`edge bench: HTTP ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };

  try {
    const c0 = performance.now();
    await ok(await post('/v1/segment', cases[0].ct, 'application/octet-stream'));
    const firstMs = performance.now() - c0;
    const n0 = performance.now();
    const nodeRunner: OrtRunner = await createOrtRunner(ortNode as unknown as OrtModule, fixture.fp32, {
      intraOpNumThreads: 1,
    });
    await segmentVolume(readNifti(cases[0].ct), manifest, nodeRunner, {});
    const nodeFirstMs = performance.now() - n0;
    yield result(GROUP, 'cold start: workerd ready (ms)', startupMs, 'ms');
    yield result(
      GROUP,
      'cold start: first /v1/segment 96^3 (ms)',
      firstMs,
      'ms',
      nodeFirstMs,
      'ort-node session + first segment',
    );

    yield result(GROUP, '/health', await timeMedian(async () => ok(await get('/health')), reps * 2), 'ms');
    yield result(
      GROUP,
      '/v1/models',
      await timeMedian(async () => ok(await get('/v1/models')), reps * 2),
      'ms',
    );

    for (const c of cases) {
      ctx.log(`edge: ${c.name}`);
      const volume = readNifti(c.ct);
      const worker = await timeMedian(
        async () => ok(await post('/v1/segment', c.ct, 'application/octet-stream')),
        reps,
      );
      const node = await timeMedian(() => segmentVolume(readNifti(c.ct), manifest, nodeRunner, {}), reps);
      yield result(GROUP, `/v1/segment ${c.name}`, worker, 'ms', node, 'ort-node, same pipeline and model');

      const scoreForm = () => {
        const f = new FormData();
        f.set('image', new Blob([c.ct as BlobPart]));
        f.set('label', new Blob([c.scoreLabel as BlobPart]));
        return f;
      };
      const scoreWorker = await timeMedian(async () => ok(await post('/v1/score', scoreForm())), reps);
      const scoreNode = await timeMedian(
        () =>
          scoreSynthetic(readNifti(c.ct), readNifti(c.scoreLabel), {
            segmentor: { manifest, runner: nodeRunner },
            policy: 'segmentor',
          }),
        reps,
      );
      yield result(
        GROUP,
        `/v1/score ${c.name}`,
        scoreWorker,
        'ms',
        scoreNode,
        'ort-node, same pipeline and model',
      );

      const synthForm = () => {
        const f = new FormData();
        f.set('image', new Blob([c.ct as BlobPart]));
        f.set('label', new Blob([c.organLabel as BlobPart]));
        f.set('organ', 'liver');
        f.set('label_map', c.labelMap);
        f.set('seed', '5');
        return f;
      };
      const synthWorker = await timeMedian(async () => ok(await post('/v1/synthesize', synthForm())), reps);
      const synthNode = await timeMedian(() => {
        const label = readNifti(c.organLabel);
        const merged = toMergedScheme(label.data, parseLabelMap(c.labelMap), 'liver');
        const out = synthesize(
          {
            image: windowHU(volume.data, -175, 250),
            label: merged,
            dims: volume.dims,
            spacing: spacingOf(volume.affine),
          },
          { type: 'mix', organ: 'liver' },
          new Rng(5),
        );
        return writeNifti({ ...volume, data: out.image }, { level: 1 });
      }, reps);
      yield result(
        GROUP,
        `/v1/synthesize ${c.name}`,
        synthWorker,
        'ms',
        synthNode,
        'shared synthesize in Node',
      );
    }

    // Concurrency 8: one isolate serves all eight; requests share its single wasm thread.
    const body = cases[0].ct;
    const conc = await timeMedian(
      () =>
        Promise.all(
          Array.from({ length: 8 }, async () =>
            ok(await post('/v1/segment', body, 'application/octet-stream')),
          ),
        ),
      ctx.quick ? 1 : 3,
      0,
    );
    const seq = await timeMedian(
      async () => {
        for (let i = 0; i < 8; i++) await segmentVolume(readNifti(body), manifest, nodeRunner, {});
      },
      1,
      0,
    );
    yield result(
      GROUP,
      'concurrency 8 x /v1/segment 96^3 (wall ms)',
      conc,
      'ms',
      seq,
      'ort-node, 8 in sequence',
    );

    const health = (await (await get('/health')).json()) as { isolate: { wasmMemoryBytes: number } };
    yield result(
      GROUP,
      'wasm memory after the runs (kernels engine + ORT; MiB)',
      health.isolate.wasmMemoryBytes / MiB,
      'MiB',
    );
    await nodeRunner.release?.();
  } finally {
    await mf.dispose();
  }
  yield* fullResolution(ctx);
  yield* ortOptions(ctx);
}

/**
 * Full-resolution CTs (512 x 512 x N, real slices generated on the fly: test/edge/fullres-ct.ts)
 * through /v1/segment and /v1/score with the demo's model size (U-Net 8-16-32, 24^3 windows at 3 mm,
 * int8), against the same streaming pipeline and model on onnxruntime-node (1 thread) and PyTorch
 * CPU (1 thread) forwards of the same architecture over the same number of windows.
 */
export async function* fullResolution(ctx: BenchContext): AsyncIterable<BenchResult> {
  const inspectorPort = 9_700 + (process.pid % 100);
  const fixture = await buildModelFixture({ version: 'full', seed: 4, int8: true, patchSize: [24, 24, 24] });
  const mf = startWorker(buildWorker('dist/edge-bench'), {
    inspectorPort,
    vars: { MAX_BODY_BYTES: String(1 << 30), LATEST_TTL_SECONDS: '3600' },
  });
  await mf.ready;
  await publish((await mf.getR2Bucket('MODELS')) as never, [fixture]);
  const inspector = new IsolateInspector(inspectorPort);
  const int8 = fixture.objects.get('models/segmentor/full/model.int8.onnx') as Uint8Array;
  const nodeRunner = await createOrtRunner(ortNode as unknown as OrtModule, int8, { intraOpNumThreads: 1 });
  const torchMs = torchWindowMs(4, 3, 24);
  const send = async (path: string, body: ReadableStream<Uint8Array>, type: string) => {
    const pid = workerdPids()[0];
    const cpu0 = pid ? cpuSeconds(pid) : 0;
    const sampler = sampleHeap(inspector);
    const t0 = performance.now();
    const res = (await mf.dispatchFetch(`http://edge.bench${path}`, {
      method: 'POST',
      headers: { ...bearer(KEYS.user), 'content-type': type },
      body,
      duplex: 'half',
    } as never)) as unknown as Response;
    await res.arrayBuffer();
    const ms = performance.now() - t0;
    const heap = await sampler.stop();
    if (res.status !== 200) throw new Error(`edge bench: ${path} HTTP ${res.status}`);
    const wasm = (
      (await (await mf.dispatchFetch('http://edge.bench/health')).json()) as {
        isolate: { wasmMemoryBytes: number };
      }
    ).isolate.wasmMemoryBytes;
    return {
      ms,
      cpu: pid ? cpuSeconds(pid) - cpu0 : Number.NaN,
      isolate: wasm + heap.totalSize + heap.backingStorageSize,
    };
  };
  try {
    for (const [slices, mm] of ctx.quick
      ? ([[129, 2.5]] as const)
      : ([
          [129, 2.5],
          [1000, 0.6],
        ] as const)) {
      const ct = fullResCt(slices, mm);
      const name = `512x512x${slices}`;
      ctx.log(`edge: ${name} through /v1/segment`);
      const worker = await send('/v1/segment', ct.stream(), 'application/octet-stream');
      const n0 = performance.now();
      const c0 = process.cpuUsage();
      const node = await segmentNiftiStream(ct.stream(), fixture.manifest, nodeRunner, {});
      await node.maskStream(true).pipeTo(new WritableStream());
      const nodeMs = performance.now() - n0;
      const c1 = process.cpuUsage(c0);
      // CPU seconds, the figure a loaded machine distorts least (the Workers limit is CPU time too).
      const nodeCpu = (c1.user + c1.system) / 1e6;
      yield result(
        GROUP,
        `/v1/segment ${name} streamed (ms)`,
        worker.ms,
        'ms',
        nodeMs,
        'ort-node 1 thread, same streaming pipeline and int8 model',
      );
      if (torchMs !== null) {
        yield result(
          GROUP,
          `/v1/segment ${name} vs PyTorch forwards of its ${node.stats.windows} windows (ms)`,
          worker.ms,
          'ms',
          torchMs * node.stats.windows,
          'PyTorch CPU 1 thread, same U-Net, forwards only',
        );
      }
      yield result(GROUP, `/v1/segment ${name} isolate peak (MiB; limit 128)`, worker.isolate / MiB, 'MiB');
      yield result(
        GROUP,
        `/v1/segment ${name} workerd CPU (s; Workers limit 300)`,
        worker.cpu,
        's',
        nodeCpu,
        'ort-node 1 thread process CPU, same pipeline (includes making the CT stream)',
      );
      if (slices === 129) {
        ctx.log(`edge: ${name} through /v1/score`);
        const { body, contentType } = multipartBody([
          ['label', ballLabel(ct).stream()],
          ['image', ct.stream()],
        ]);
        const score = await send('/v1/score', body, contentType);
        yield result(
          GROUP,
          `/v1/score ${name} (QC crop; ms)`,
          score.ms,
          'ms',
          worker.ms,
          '/v1/segment of the same CT',
        );
        // The cost a Worker is billed and limited by; the wall time above also carries the transfer of
        // both parts (about 100 MB uncompressed) through Miniflare's loopback on a loaded machine.
        yield result(
          GROUP,
          `/v1/score ${name} workerd CPU (QC crop; s)`,
          score.cpu,
          's',
          worker.cpu,
          '/v1/segment of the same CT, workerd CPU',
        );
      }
    }
  } finally {
    await nodeRunner.release?.();
    inspector.close();
    await mf.dispose();
  }
}

/** ms per 24^3 window of the PyTorch U-Net (bench/reference/unet_torch.py), or null without torch. */
function torchWindowMs(base: number, depth: number, patch: number): number | null {
  const r = spawnSync(
    '/usr/bin/python3',
    [join(HERE, 'reference/unet_torch.py'), String(base), String(depth), String(patch), '15'],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout.trim().split('\n').pop() as string) as { ms_per_window: number }).ms_per_window;
}

/**
 * ORT-web (the Worker's wasm build, in Node, 1 thread) session settings on the demo model, per 24^3
 * window: what `WORKER_SESSION_OPTIONS` (edge/ort.ts) was chosen from.
 */
export async function* ortOptions(ctx: BenchContext): AsyncIterable<BenchResult> {
  const web = await import('onnxruntime-web');
  web.env.wasm.numThreads = 1;
  const fixture = await buildModelFixture({ version: 'opt', seed: 4, int8: true, patchSize: [24, 24, 24] });
  const files = {
    fp32: fixture.objects.get('models/segmentor/opt/model.fp32.onnx') as Uint8Array,
    int8: fixture.objects.get('models/segmentor/opt/model.int8.onnx') as Uint8Array,
  };
  const input = new Float32Array(24 ** 3).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  const perWindow = async (bytes: Uint8Array, options: OrtSessionOptions) => {
    const runner = await createOrtRunner(web as unknown as OrtModule, bytes, {
      executionProviders: ['wasm'],
      ...options,
    });
    const name = fixture.manifest.inputs[0].name;
    const ms = await timeMedian(
      () => runner.run({ [name]: { dims: [1, 1, 24, 24, 24], data: input } }),
      ctx.quick ? 5 : 20,
      3,
    );
    await runner.release?.();
    return ms;
  };
  const base = await perWindow(files.int8, { graphOptimizationLevel: 'all' });
  const rows: Array<[string, Uint8Array, OrtSessionOptions]> = [
    ['fp32 weights', files.fp32, { graphOptimizationLevel: 'all' }],
    ['int8, graph optimization basic', files.int8, { graphOptimizationLevel: 'basic' }],
    ['int8, memory arena off, sequential (Worker)', files.int8, WORKER_SESSION_OPTIONS],
    [
      'int8, free dims fixed to the patch',
      files.int8,
      { graphOptimizationLevel: 'all', freeDimensionOverrides: { D: 24, H: 24, W: 24 } },
    ],
  ];
  yield result(GROUP, 'ORT-web 24^3 window, int8, graph optimization all (ms)', base, 'ms');
  for (const [label, bytes, options] of rows) {
    yield result(
      GROUP,
      `ORT-web 24^3 window, ${label} (ms)`,
      await perWindow(bytes, options),
      'ms',
      base,
      'int8, optimization all',
    );
  }
}
