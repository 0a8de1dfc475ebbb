/**
 * Worker thread of synthesize-dataset: pure compute. It gets a variant's input bytes, answers with
 * the output bytes (transferred, not copied) and the QC verdict; all bucket I/O stays in the main
 * thread. The models (generator, QC segmentor/discriminator) are opened once per worker, and one
 * texture bank per worker is reused across cases.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TextureBank } from '../../../shared/synthesis/texture.ts';
import { openLocalModel } from '../../runners/local-model.ts';
import {
  type SynthesisModels,
  synthesizeVariant,
  type VariantJob,
  type VariantOutcome,
} from './synthesize-case.ts';

export interface WorkerSetup {
  generator?: string;
  quality?: string;
  /** onnxruntime intra-op threads per worker. */
  threads: number;
}

export interface WorkerRequest {
  job: VariantJob;
  image: Uint8Array;
  label: Uint8Array;
}

export type WorkerReply = { id: string; outcome: VariantOutcome } | { id: string; fatal: string };

/** Opens the models a run names (fp32: QC judges the weights, as the job's validation does). */
export async function openModels(setup: WorkerSetup): Promise<SynthesisModels> {
  const common = { precision: 'fp32' as const, threads: setup.threads };
  const models: SynthesisModels = {};
  if (setup.generator) {
    const g = await openLocalModel(setup.generator, 'generator', common);
    if (g) models.generator = g;
  }
  if (setup.quality) {
    models.segmentor =
      (await openLocalModel(setup.quality, 'segmentor', { ...common, required: false })) ?? undefined;
    models.discriminator =
      (await openLocalModel(setup.quality, 'discriminator', { ...common, required: false })) ?? undefined;
  }
  return models;
}

if (parentPort) {
  const port = parentPort;
  const textures = new TextureBank();
  const ready = openModels(workerData as WorkerSetup);
  port.on('message', async (m: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      const outcome = await synthesizeVariant(m.image, m.label, m.job, await ready, textures);
      reply = { id: m.job.id, outcome };
    } catch (e) {
      reply = { id: m.job.id, fatal: (e as Error).message };
    }
    const transfer =
      'outcome' in reply && reply.outcome.ok
        ? [reply.outcome.image, reply.outcome.label].flatMap((b) => (b ? [b.buffer as ArrayBuffer] : []))
        : [];
    port.postMessage(reply, transfer);
  });
}
