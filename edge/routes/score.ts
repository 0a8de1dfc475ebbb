/**
 * POST /v1/score: multipart `label` + `image` (NIfTI, same grid) -> quality of the synthetic tumor:
 * the segmentor's detection rate and/or the discriminator's realism, and the accept decision under the
 * published quality-control policy (shared/inference/quality.ts, as the CLI's `score`). Both parts
 * stream; only the synthetic voxels of the label and the QC crop of the image around them are kept
 * (shared/inference/quality-crop.ts), so a full-resolution CT costs a few windows. Send the label
 * first: an image sent before it is held compressed, up to MAX_DECOMPRESSED_BYTES.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { FreeTumorError, LimitError } from '../../shared/errors.ts';
import type { QualityPolicy, ScoringModel } from '../../shared/inference/quality.ts';
import { SyntheticCollector, scoreSyntheticCrop } from '../../shared/inference/quality-crop.ts';
import type { ModelRole } from '../../shared/model/manifest.ts';
import { edgeContext } from '../context.ts';
import type { EdgeConfig } from '../env.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { requireMediaType } from '../middleware/limits.ts';
import { boundaryOf, MultipartStream } from '../multipart-stream.ts';
import { checkDeclaredLength, openNiftiBody } from '../nifti-input.ts';
import type { ModelRegistry } from '../registry.ts';
import { errorSchema, scoreMultipart, scoreParamsSchema, scoreSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

const route = createRoute({
  method: 'post',
  path: '/v1/score',
  summary: 'Score a synthetic tumor (realism, detection, accepted)',
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { 'multipart/form-data': { schema: scoreMultipart } } } },
  responses: {
    200: { description: 'quality score', content: { 'application/json': { schema: scoreSchema } } },
    400: errors('missing part or malformed NIfTI'),
    413: errors('over a size limit'),
    415: errors('not multipart/form-data'),
    422: errors('image and label not on the same grid'),
    503: errors('no scoring model published yet'),
  },
});

async function published(
  registry: ModelRegistry,
  role: ModelRole,
): Promise<(ScoringModel & { version: string; release(): void }) | null> {
  const pointer = await registry.latest();
  if (!pointer?.models[role]) return null;
  const { manifest, runner, release } = await registry.model(role);
  return { manifest, runner, version: manifest.version, release };
}

/** The manifest's policy when the models it needs are published, else whichever signal exists. */
function effectivePolicy(wanted: QualityPolicy | undefined, hasS: boolean, hasD: boolean): QualityPolicy {
  const policy = wanted ?? 'segmentor';
  if ((policy === 'segmentor' || policy === 'both') && !hasS) return hasD ? 'discriminator' : policy;
  if ((policy === 'discriminator' || policy === 'both') && !hasD) return hasS ? 'segmentor' : policy;
  return policy;
}

/** Reads a label part (streamed) into the collector of its synthetic voxels. */
async function collectLabel(body: ReadableStream<Uint8Array>, config: EdgeConfig, signal: AbortSignal) {
  const reader = await openNiftiBody(body, config, signal);
  const collector = new SyntheticCollector(reader.info.dims);
  for (let k = 0; ; k++) {
    const slice = await reader.next();
    if (!slice) break;
    collector.add(k, slice);
  }
  return { header: reader.info, collector };
}

export const score = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { config, registry } = edgeContext(c.env);
  requireMediaType(c.req.header('content-type'), ['multipart/form-data']);
  checkDeclaredLength(c.req.raw, config.maxBodyBytes);
  const boundary = boundaryOf(c.req.header('content-type') ?? null);
  const signal = c.req.raw.signal;
  const releaseGate = await heavyWork.acquire({
    maxWaitMs: config.queueWaitMs,
    maxQueued: config.maxQueued,
    signal,
  });
  const leases: Array<{ release(): void }> = [];
  let parts: MultipartStream | null = null;
  try {
    const segmentor = await published(registry, 'segmentor');
    if (segmentor) leases.push(segmentor);
    const discriminator = await published(registry, 'discriminator');
    if (discriminator) leases.push(discriminator);
    if (!segmentor && !discriminator) {
      throw new FreeTumorError('model_unavailable', 'no segmentor or discriminator is published yet');
    }
    if (!c.req.raw.body)
      throw new ApiError(400, 'missing_part', 'multipart part "label" (a NIfTI file) is required');
    parts = new MultipartStream(c.req.raw.body, boundary, config.maxBodyBytes);
    const fields = new Map<string, string>();
    let label: Awaited<ReturnType<typeof collectLabel>> | null = null;
    // The image, when it comes before the label: kept compressed, up to a bound.
    let imageBytes: Uint8Array | null = null;
    let result: Awaited<ReturnType<typeof scoreSyntheticCrop>> | null = null;
    const organ = () => {
      const params = scoreParamsSchema.safeParse(Object.fromEntries(fields));
      if (!params.success)
        throw new ApiError(400, 'invalid_argument', `organ: ${params.error.issues[0]?.message}`);
      const o = params.data.organ;
      for (const m of [segmentor, discriminator]) {
        if (o && m && !(m.manifest.organs as string[]).includes(o)) {
          throw new ApiError(
            422,
            'invalid_organ',
            `the active ${m.manifest.role} covers ${m.manifest.organs.join(', ')}`,
          );
        }
      }
    };
    const run = async (image: ReadableStream<Uint8Array>) => {
      if (!label) throw new Error('internal: scoring before the label');
      organ();
      const reader = await openNiftiBody(image, config, signal);
      const qc = (segmentor ?? discriminator)?.manifest.qualityControl;
      const policy = effectivePolicy(qc?.policy, segmentor !== null, discriminator !== null);
      return scoreSyntheticCrop(reader, label.header, label.collector, {
        segmentor: segmentor ?? undefined,
        discriminator: discriminator ?? undefined,
        policy,
        maxCropVoxels: config.maxVoxels,
      });
    };
    for (let part = await parts.next(); part; part = await parts.next()) {
      if (part.filename === null) {
        fields.set(part.name, new TextDecoder().decode(await part.bytes(1024)));
      } else if (part.name === 'label' && !label) {
        label = await collectLabel(part.body, config, signal);
        if (imageBytes) {
          result = await run(new Blob([imageBytes as Uint8Array<ArrayBuffer>]).stream());
          imageBytes = null;
        }
      } else if (part.name === 'image' && !result && !imageBytes) {
        if (label) result = await run(part.body);
        else {
          // Sent before its label: bounded, since the crop is not known until the label is read.
          imageBytes = await part.bytes(config.maxDecompressedBytes).catch((e) => {
            if ((e as { code?: string }).code === 'too_large')
              throw new LimitError(
                'image part bytes before the label part (send the label first)',
                config.maxDecompressedBytes,
                'more',
              );
            throw e;
          });
        }
      } else {
        await part.body.cancel();
      }
    }
    if (!label) throw new ApiError(400, 'missing_part', 'multipart part "label" (a NIfTI file) is required');
    if (!result) throw new ApiError(400, 'missing_part', 'multipart part "image" (a NIfTI file) is required');
    const model: Record<string, string> = {};
    if (segmentor) model.segmentor = segmentor.version;
    if (discriminator) model.discriminator = discriminator.version;
    return c.json(
      {
        realism: result.realism,
        detection: result.detection,
        accepted: result.accepted,
        threshold: { ...result.threshold, policy: result.policy },
        model,
      },
      200,
    );
  } catch (e) {
    await parts?.cancel();
    throw e;
  } finally {
    for (const l of leases) l.release();
    releaseGate();
  }
});
