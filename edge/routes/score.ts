/**
 * POST /v1/score: multipart `image` + `label` (NIfTI, same grid) -> quality of the synthetic tumor:
 * the segmentor's detection rate and/or the discriminator's realism, and the accept decision under the
 * published quality-control policy (shared/inference/quality.ts, as the CLI's `score`).
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { FreeTumorError } from '../../shared/errors.ts';
import { type QualityPolicy, type ScoringModel, scoreSynthetic } from '../../shared/inference/quality.ts';
import type { ModelRole } from '../../shared/model/manifest.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { readMultipart, requirePart } from '../middleware/limits.ts';
import { readNiftiBounded } from '../nifti-input.ts';
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

export const score = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { config, registry } = edgeContext(c.env);
  const { files, fields } = await readMultipart(c.req.raw, config.maxBodyBytes);
  const params = scoreParamsSchema.safeParse(Object.fromEntries(fields));
  if (!params.success)
    throw new ApiError(400, 'invalid_argument', `organ: ${params.error.issues[0]?.message}`);
  return heavyWork.run(async () => {
    const image = readNiftiBounded(requirePart(files, 'image'), config);
    const label = readNiftiBounded(requirePart(files, 'label'), config);
    files.clear();
    const segmentor = await published(registry, 'segmentor');
    const discriminator = await published(registry, 'discriminator');
    if (!segmentor && !discriminator) {
      throw new FreeTumorError('model_unavailable', 'no segmentor or discriminator is published yet');
    }
    const organ = params.data.organ;
    for (const m of [segmentor, discriminator]) {
      if (organ && m && !(m.manifest.organs as string[]).includes(organ)) {
        throw new ApiError(
          422,
          'invalid_organ',
          `the active ${m.manifest.role} covers ${m.manifest.organs.join(', ')}`,
        );
      }
    }
    const qc = (segmentor ?? discriminator)?.manifest.qualityControl;
    const policy = effectivePolicy(qc?.policy, segmentor !== null, discriminator !== null);
    const result = await scoreSynthetic(image, label, {
      segmentor: segmentor ?? undefined,
      discriminator: discriminator ?? undefined,
      policy,
    });
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
  });
});
