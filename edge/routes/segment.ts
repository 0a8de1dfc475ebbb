/**
 * POST /v1/segment: a NIfTI CT in the body -> a uint8 NIfTI mask on the input's own grid (0 bg,
 * 1 organ, 2 tumor) or JSON statistics (shared/segmentation/statistics.ts: per structure volume and HU,
 * per lesion volume, centroid and HU; the schema of the CLI's `segment --statistics`). Pre/post-processing
 * is shared/inference's, the same code the CLI runs, so a model gives the same mask in both places.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { segmentVolume } from '../../shared/inference/segment.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { segmentationStatistics } from '../../shared/segmentation/statistics.ts';
import { maskStructures } from '../../shared/segmentation/structures.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { NIFTI_MEDIA_TYPES, readBoundedBody, requireMediaType } from '../middleware/limits.ts';
import { readNiftiBounded } from '../nifti-input.ts';
import { errorSchema, niftiBinary, segmentJsonSchema, segmentQuerySchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

const route = createRoute({
  method: 'post',
  path: '/v1/segment',
  summary: 'Segment the organ and tumors of a CT',
  security: [{ bearer: [] }],
  request: {
    query: segmentQuerySchema,
    body: {
      required: true,
      content: { 'application/octet-stream': { schema: { ...niftiBinary, description: '.nii or .nii.gz' } } },
    },
  },
  responses: {
    200: {
      description: 'mask (format=nifti) or statistics (format=json)',
      content: {
        'application/json': { schema: segmentJsonSchema },
        'application/gzip': { schema: { ...niftiBinary, description: 'uint8 NIfTI-1 mask, gzip' } },
      },
    },
    400: errors('malformed NIfTI or parameter'),
    413: errors('over a size limit'),
    415: errors('wrong content type'),
    422: errors('organ the model does not segment'),
    503: errors('no model published yet'),
  },
});

export const segment = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { organ, format } = c.req.valid('query');
  requireMediaType(c.req.header('content-type'), NIFTI_MEDIA_TYPES);
  const { config, registry } = edgeContext(c.env);
  const bytes = await readBoundedBody(c.req.raw, config.maxBodyBytes);
  return heavyWork.run(async () => {
    const volume = readNiftiBounded(bytes, config);
    const { manifest, runner } = await registry.model('segmentor');
    if (organ && !manifest.organs.includes(organ)) {
      throw new ApiError(
        422,
        'invalid_organ',
        `the active segmentor covers ${manifest.organs.join(', ')}, not ${organ}`,
      );
    }
    const result = await segmentVolume(volume, manifest, runner, { organ: organ ?? manifest.organs[0] });
    c.header('x-model-version', manifest.version);
    if (format === 'json') {
      const organName = (organ ?? manifest.organs[0]) as OrganName;
      const stats = segmentationStatistics(volume, result.mask, maskStructures(manifest.labels, organName), {
        model: { name: manifest.name, version: manifest.version },
        organ: organName,
      });
      return c.json(stats, 200);
    }
    const out = writeNifti({ ...result.mask, datatype: 'uint8' }, { gzip: true, datatype: 'uint8' });
    return c.body(out as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/gzip',
      'content-disposition': 'attachment; filename="mask.nii.gz"',
    });
  });
});
