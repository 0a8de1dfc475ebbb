/**
 * `npm run bench -- edge`: the edge API on the local Worker (the deploy bundle in workerd through
 * Miniflare, R2 seeded with a model exported by the project's own exporter) against the same
 * pipeline on onnxruntime-node (1 thread, in this process) with the same model file, in the same run:
 * every route on a 96^3 phantom volume and on the real 3 mm CT, cold start, and 8 concurrent requests.
 * Worker times are HTTP round trips (body transfer included); workerd runs ORT's wasm, single thread.
 */
import { readFileSync } from 'node:fs';
import * as ortNode from 'onnxruntime-node';
import { fitPatch } from '../edge/patch.ts';
import { createOrtRunner, type OrtModule, type OrtRunner } from '../shared/inference/ort-runner.ts';
import { scoreSynthetic } from '../shared/inference/quality.ts';
import { segmentVolume } from '../shared/inference/segment.ts';
import { windowHU } from '../shared/intensity/window.ts';
import { parseLabelMap, toMergedScheme } from '../shared/labels/labelmap.ts';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { Rng } from '../shared/random.ts';
import { synthesize } from '../shared/synthesis/index.ts';
import { readNifti, writeNifti } from '../shared/volume/nifti.ts';
import { makeVolume, spacingOf, type Volume } from '../shared/volume/volume.ts';
import { buildModelFixture, publish } from '../test/edge/fixtures.ts';
import { bearer, buildWorker, encodeForm, KEYS, startWorker } from '../test/edge/harness.ts';
import { type BenchContext, type BenchResult, result, timeMedian } from './harness.ts';

const GROUP = 'edge';
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
  const mf = startWorker(bundle, { vars: { MAX_BODY_BYTES: String(64 * MiB), LATEST_TTL_SECONDS: '3600' } });
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
    yield result(GROUP, 'ORT wasm memory after the runs (MiB)', health.isolate.wasmMemoryBytes / MiB, 'MiB');
    await nodeRunner.release?.();
  } finally {
    await mf.dispose();
  }
}
