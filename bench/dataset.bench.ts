/**
 * `npm run bench -- dataset`: `freetumor synthesize-dataset` timed as whole processes (what a Batch
 * child costs), handcrafted tumors, one worker thread per shard process, on K phantom CTs at 3 mm:
 * local folder -> local folder and s3rver -> s3rver, with 1 shard and with 2 shards running at once.
 * Cases per minute; baseline (same run): the local 1-shard run. Then one case of the real
 * TotalSegmentator sample (1.5 mm working grid, when ../shared/data exists) and the projected wall
 * time for 10k CTs on N Batch workers: 10,000 x (seconds per real case) / N, assuming every worker
 * runs one shard on one core as fast as this machine's single shard, input/output transfer
 * overlapping nothing (it is inside the measured s3 time), no spot interruptions, and instance
 * start-up (about 2-4 min on Batch) on top.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePhantom } from '../shared/phantom/phantom.ts';
import { writeNifti } from '../shared/volume/nifti.ts';
import { startLocalS3 } from '../trainer/publish/local-s3.ts';
import { S3Store } from '../trainer/storage/object-store.ts';
import { type BenchContext, type BenchResult, result } from './harness.ts';

const GROUP = 'dataset';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

function cli(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/freetumor.js', ...args], {
      cwd: ROOT,
      env: { ...process.env, AWS_BATCH_JOB_ARRAY_INDEX: '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`exit ${code}: ${err.slice(-500)}`)),
    );
  });
}

/** Seconds for `shards` shard processes started together. */
async function timeShards(
  data: string,
  out: string,
  shards: number,
  env: Record<string, string>,
  extra: string[],
) {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: shards }, (_, i) =>
      cli(
        [
          'synthesize-dataset',
          '--data',
          data,
          '--out',
          out,
          '--workers',
          '1',
          '--type',
          'medium',
          '--shard',
          `${i}/${shards}`,
          ...extra,
        ],
        env,
      ),
    ),
  );
  return (performance.now() - t0) / 1000;
}

export async function* run(ctx: BenchContext): AsyncIterable<BenchResult> {
  const k = ctx.quick ? 2 : 6;
  const work = mkdtempSync(join(tmpdir(), 'ft-bench-dataset-'));
  const s3 = await startLocalS3(['bench']);
  const store = new S3Store({
    endpoint: s3.endpoint,
    bucket: 'bench',
    ...s3.credentials,
    forcePathStyle: true,
  });
  const env = { R2_ACCESS_KEY_ID: 'S3RVER', R2_SECRET_ACCESS_KEY: 'S3RVER' };
  try {
    const data = join(work, 'in');
    mkdirSync(join(data, 'imagesTr'), { recursive: true });
    mkdirSync(join(data, 'labelsTr'), { recursive: true });
    for (let i = 0; i < k; i++) {
      const p = generatePhantom({ seed: 500 + i, spacing: 3, tumors: [] });
      const ct = writeNifti(p.ct);
      const label = writeNifti(p.label);
      writeFileSync(join(data, 'imagesTr', `ph${i}_0000.nii.gz`), ct);
      writeFileSync(join(data, 'labelsTr', `ph${i}.nii.gz`), label);
      await store.put(`in/imagesTr/ph${i}_0000.nii.gz`, ct);
      await store.put(`in/labelsTr/ph${i}.nii.gz`, label);
    }
    const perMin = (s: number) => (k / s) * 60;
    const s3args = ['--endpoint', s3.endpoint];
    const local1 = perMin(await timeShards(data, join(work, 'out1'), 1, env, []));
    yield result(GROUP, `local, 1 shard, ${k} phantoms 3 mm`, local1, 'cases/min');
    const local2 = perMin(await timeShards(data, join(work, 'out2'), 2, env, []));
    yield result(GROUP, 'local, 2 shards at once', local2, 'cases/min', local1, 'local 1 shard');
    const s31 = perMin(await timeShards('s3://bench/in', 's3://bench/out1', 1, env, s3args));
    yield result(GROUP, 's3rver, 1 shard', s31, 'cases/min', local1, 'local 1 shard');
    const s32 = perMin(await timeShards('s3://bench/in', 's3://bench/out2', 2, env, s3args));
    yield result(GROUP, 's3rver, 2 shards at once', s32, 'cases/min', local1, 'local 1 shard');

    const ct = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_ct.nii.gz');
    const seg = ctx.sharedData && join(ctx.sharedData, 'totalseg-example/example_seg_v1_full.nii.gz');
    if (ct && seg && existsSync(ct) && existsSync(seg) && !ctx.quick) {
      const real = join(work, 'real');
      mkdirSync(join(real, 'imagesTr'), { recursive: true });
      mkdirSync(join(real, 'labelsTr'), { recursive: true });
      writeFileSync(join(real, 'imagesTr', 'ts_0000.nii.gz'), readFileSync(ct));
      writeFileSync(join(real, 'labelsTr', 'ts.nii.gz'), readFileSync(seg));
      const seconds = await timeShards(real, join(work, 'real-out'), 1, env, ['--label-map', 'totalseg']);
      yield result(GROUP, 'real CT (TotalSegmentator sample), 1 case, whole process', seconds, 's');
      for (const n of [10, 100, 500]) {
        yield result(
          GROUP,
          `projected 10k CTs on ${n} Batch workers (1 core each)`,
          (10_000 * seconds) / n / 3600,
          'h',
        );
      }
    }
  } finally {
    store.client.destroy();
    await s3.close();
    rmSync(work, { recursive: true, force: true });
  }
}
