/**
 * POST /v1/segment: a NIfTI CT in the body -> a uint8 NIfTI mask on the input's own grid (0 bg,
 * 1 organ, 2 tumor) or JSON statistics (shared/segmentation/statistics.ts: per structure volume and HU,
 * per lesion volume, centroid and HU; the schema of the CLI's `segment --statistics`). For the mask the
 * body streams through the work (header checked first, slices as they arrive, windows band by band:
 * shared/inference/stream-segment.ts) and the mask streams out gzip-compressed, so a 512 x 512 x 1000
 * CT fits the 128 MB isolate. The statistics need the CT's HU under the final mask, so format=json
 * reads the CT whole, under MAX_VOXELS. Pre- and post-processing are the CLI's.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { LimitError } from '../../shared/errors.ts';
import { segmentVolume } from '../../shared/inference/segment.ts';
import { segmentSliceStream } from '../../shared/inference/stream-segment.ts';
import type { OrganName } from '../../shared/labels/labelmap.ts';
import { segmentationStatistics } from '../../shared/segmentation/statistics.ts';
import { maskStructures } from '../../shared/segmentation/structures.ts';
import { readSliceVolume } from '../../shared/volume/nifti-slices.ts';
import { gzipNiftiSliceStream } from '../../shared/volume/nifti-write-stream.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { NIFTI_MEDIA_TYPES, requireMediaType } from '../middleware/limits.ts';
import { checkDeclaredLength, openNiftiBody } from '../nifti-input.ts';
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
      description: 'mask (format=nifti) or lesion summary (format=json)',
      content: {
        'application/json': { schema: segmentJsonSchema },
        'application/gzip': { schema: { ...niftiBinary, description: 'uint8 NIfTI-1 mask, gzip' } },
      },
    },
    400: errors('malformed NIfTI or parameter'),
    408: errors('the body stalled'),
    413: errors('over a size limit'),
    415: errors('wrong content type'),
    422: errors('organ the model does not segment'),
    503: errors('no model published yet, or the queue is full (Retry-After)'),
  },
});

export const segment = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { organ, format } = c.req.valid('query');
  requireMediaType(c.req.header('content-type'), NIFTI_MEDIA_TYPES);
  const { config, registry } = edgeContext(c.env);
  checkDeclaredLength(c.req.raw, config.maxBodyBytes);
  const signal = c.req.raw.signal;
  const releaseGate = await heavyWork.acquire({
    maxWaitMs: config.queueWaitMs,
    maxQueued: config.maxQueued,
    signal,
  });
  let model: Awaited<ReturnType<typeof registry.model>> | null = null;
  let reader: Awaited<ReturnType<typeof openNiftiBody>> | null = null;
  const releaseAll = () => {
    model?.release();
    releaseGate();
  };
  try {
    model = await registry.model('segmentor');
    const { manifest, runner } = model;
    if (organ && !manifest.organs.includes(organ)) {
      throw new ApiError(
        422,
        'invalid_organ',
        `the active segmentor covers ${manifest.organs.join(', ')}, not ${organ}`,
      );
    }
    if (!c.req.raw.body) throw new ApiError(400, 'invalid_argument', 'the request has no body');
    reader = await openNiftiBody(c.req.raw.body, config, signal);
    if (format === 'json') {
      if (reader.info.voxels > config.maxVoxels) {
        throw new LimitError(
          'voxels for format=json (the statistics need the whole CT; format=nifti streams)',
          config.maxVoxels,
          reader.info.voxels,
        );
      }
      const volume = await readSliceVolume(reader);
      const organName = (organ ?? manifest.organs[0]) as OrganName;
      const result = await segmentVolume(volume, manifest, runner, { organ: organName });
      c.header('x-model-version', manifest.version);
      const stats = segmentationStatistics(volume, result.mask, maskStructures(manifest.labels, organName), {
        model: { name: manifest.name, version: manifest.version },
        organ: organName,
      });
      releaseAll();
      return c.json(stats, 200);
    }
    const seg = await segmentSliceStream(reader, manifest, runner, {
      organ: organ ?? manifest.organs[0],
      maxBandBytes: config.maxBandBytes,
      signal,
    });
    c.header('x-model-version', manifest.version);
    // The gate and the session stay held until the mask has streamed out (or the client left).
    const body = gzipNiftiSliceStream(seg.dims, seg.affine, 'uint8', seg.slices(), { onClose: releaseAll });
    return c.body(body, 200, {
      'content-type': 'application/gzip',
      'content-disposition': 'attachment; filename="mask.nii.gz"',
    });
  } catch (e) {
    releaseAll();
    await reader?.cancel();
    throw e;
  }
});
