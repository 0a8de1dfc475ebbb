/**
 * POST /v1/synthesize: multipart `image` + `label` + params -> the CT with synthetic tumor(s) and its
 * label, as a zip (default) or multipart/mixed of two .nii.gz files plus a JSON summary. It runs the
 * CLI's synthesis (shared/synthesis/whole-volume.ts: working spacing, then only the change carried
 * back), so body and summary match `freetumor synthesize`; voxels it did not touch keep their exact
 * input value. The volumes are read whole under MAX_VOXELS (not streamed yet).
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { zipSync } from 'fflate';
import { parseLabelMap } from '../../shared/labels/labelmap.ts';
import { Rng } from '../../shared/random.ts';
import { synthesizeVolume } from '../../shared/synthesis/whole-volume.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { requireMediaType, requirePart } from '../middleware/limits.ts';
import { boundaryOf, MultipartStream } from '../multipart-stream.ts';
import { checkDeclaredLength, readNiftiBounded } from '../nifti-input.ts';
import { errorSchema, synthesizeMultipart, synthesizeParamsSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

const route = createRoute({
  method: 'post',
  path: '/v1/synthesize',
  summary: 'Synthesize tumor(s) in an organ of a CT',
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { 'multipart/form-data': { schema: synthesizeMultipart } } } },
  responses: {
    200: {
      description: 'ct.nii.gz + label.nii.gz + summary.json',
      content: {
        'application/zip': { schema: { type: 'string', format: 'binary' } },
        'multipart/mixed': { schema: { type: 'string', format: 'binary' } },
      },
    },
    400: errors('missing part, bad parameter, label map or NIfTI'),
    413: errors('over a size limit'),
    415: errors('not multipart/form-data'),
    422: errors('grids differ or the organ is empty'),
  },
});

export const synthesize = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { config } = edgeContext(c.env);
  requireMediaType(c.req.header('content-type'), ['multipart/form-data']);
  checkDeclaredLength(c.req.raw, config.maxBodyBytes);
  const boundary = boundaryOf(c.req.header('content-type') ?? null);
  const signal = c.req.raw.signal;
  const releaseGate = await heavyWork.acquire({
    maxWaitMs: config.queueWaitMs,
    maxQueued: config.maxQueued,
    signal,
  });
  let parts: MultipartStream | null = null;
  try {
    if (!c.req.raw.body)
      throw new ApiError(400, 'missing_part', 'multipart part "image" (a NIfTI file) is required');
    parts = new MultipartStream(c.req.raw.body, boundary, config.maxBodyBytes);
    const fields = new Map<string, string>();
    const files = new Map<string, Uint8Array>();
    for (let part = await parts.next(); part; part = await parts.next()) {
      if (part.filename === null) fields.set(part.name, new TextDecoder().decode(await part.bytes(1024)));
      else if ((part.name === 'image' || part.name === 'label') && !files.has(part.name))
        files.set(part.name, await part.bytes(config.maxBodyBytes));
      else await part.body.cancel();
    }
    const parsed = synthesizeParamsSchema.safeParse(Object.fromEntries(fields));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(400, 'invalid_argument', `${issue?.path.join('.') || 'params'}: ${issue?.message}`);
    }
    const params = parsed.data;
    const labelMap = parseLabelMap(params.label_map ?? 'freetumor');
    // Read whole under the voxel limit: the synthesis below is the CLI's (shared/synthesis/whole-volume.ts).
    const image = readNiftiBounded(requirePart(files, 'image'), config);
    files.delete('image');
    const label = readNiftiBounded(requirePart(files, 'label'), config);
    files.clear();
    // The CLI's synthesis, so the body and summary match `freetumor synthesize` (volumeMl, type).
    const result = synthesizeVolume(
      image,
      label,
      { organ: params.organ, labelMap, type: params.type, count: params.count },
      new Rng(params.seed),
    );
    const ctBytes = writeNifti(result.image, { description: 'freetumor synthetic CT (HU)' });
    const labelBytes = writeNifti(result.label, { description: 'freetumor labels + synthetic tumor' });
    const summaryBytes = new TextEncoder().encode(JSON.stringify({ seed: params.seed, ...result.summary }));
    if (params.format === 'multipart') {
      const boundaryOut = `ft-${crypto.randomUUID()}`;
      return c.body(
        multipartMixed(boundaryOut, [
          ['ct.nii.gz', 'application/gzip', ctBytes],
          ['label.nii.gz', 'application/gzip', labelBytes],
          ['summary.json', 'application/json', summaryBytes],
        ]) as Uint8Array<ArrayBuffer>,
        200,
        { 'content-type': `multipart/mixed; boundary=${boundaryOut}` },
      );
    }
    // The NIfTI files are gzip already: store them.
    const zip = zipSync(
      {
        'ct.nii.gz': [ctBytes, { level: 0 }],
        'label.nii.gz': [labelBytes, { level: 0 }],
        'summary.json': summaryBytes,
      },
      { level: 0 },
    );
    return c.body(zip as Uint8Array<ArrayBuffer>, 200, {
      'content-type': 'application/zip',
      'content-disposition': 'attachment; filename="synthetic.zip"',
    });
  } catch (e) {
    await parts?.cancel();
    throw e;
  } finally {
    releaseGate();
  }
});

function multipartMixed(boundary: string, parts: Array<[string, string, Uint8Array]>): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const [name, type, bytes] of parts) {
    chunks.push(
      enc.encode(
        `--${boundary}\r\ncontent-type: ${type}\r\ncontent-disposition: attachment; filename="${name}"\r\n\r\n`,
      ),
      bytes,
      enc.encode('\r\n'),
    );
  }
  chunks.push(enc.encode(`--${boundary}--\r\n`));
  const out = new Uint8Array(chunks.reduce((n, ch) => n + ch.byteLength, 0));
  let o = 0;
  for (const ch of chunks) {
    out.set(ch, o);
    o += ch.byteLength;
  }
  return out;
}
