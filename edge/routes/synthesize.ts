/**
 * POST /v1/synthesize: multipart fields + `label` + `image` -> the CT with synthetic tumor(s) and its
 * label, as a zip (default) or multipart/mixed of two .nii.gz files plus a JSON summary. It is the
 * CLI's synthesis (`freetumor synthesize`: shared/synthesis/whole-volume.ts) computed as the CT
 * streams (shared/synthesis/stream-synthesis.ts), so body and summary match the CLI's byte for byte
 * (the .nii bytes; the gzip framing differs) and a 512 x 512 x 1000 CT fits the 128 MB isolate:
 *
 * - the label part is held compressed (MAX_DECOMPRESSED_BYTES) and read slice by slice: once for its
 *   ids (the label map is resolved as the CLI does: `label_map`, checked against the ids, else the
 *   scheme detected from them; shared/labels/detect.ts; the same ids choose the tumor id), once to
 *   plan the tumors on the organ's box at the working spacing (MAX_SYNTHESIS_VOXELS), then beside
 *   the CT, then once more for the output label;
 * - the image part streams through: each synthetic CT slice goes out gzip-compressed as soon as the
 *   working-grid slabs it takes its change from exist, while the upload goes on.
 *
 * Streaming needs the fields (`organ` at least) and `label` before `image` (the client sends them in
 * that order); a field after the image cannot change a response already under way, so it cuts the
 * response (logged). An image sent before the label or the organ is held compressed, up to
 * MAX_DECOMPRESSED_BYTES, and synthesized once the body has ended.
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { LimitError } from '../../shared/errors.ts';
import {
  LabelIdCollector,
  type LabelIds,
  type ResolvedLabelMap,
  resolveLabelMap,
} from '../../shared/labels/detect.ts';
import type { OrganName } from '../../shared/labels/organs.ts';
import { Rng } from '../../shared/random.ts';
import { StreamedSynthesis } from '../../shared/synthesis/stream-synthesis.ts';
import { TextureBank } from '../../shared/synthesis/texture.ts';
import { checkSameGrid } from '../../shared/synthesis/whole-volume.ts';
import type { NiftiHeaderInfo } from '../../shared/volume/nifti-header.ts';
import { NiftiSliceReader } from '../../shared/volume/nifti-slices.ts';
import { gzipNiftiSliceStream } from '../../shared/volume/nifti-write-stream.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { requireMediaType } from '../middleware/limits.ts';
import { boundaryOf, MultipartStream } from '../multipart-stream.ts';
import { checkDeclaredLength, openNiftiBody, sliceLimits } from '../nifti-input.ts';
import { errorSchema, synthesizeMultipart, synthesizeParamsSchema } from '../schemas.ts';
import { type ArchiveEntry, multipartStream, zipStream } from '../stream-archive.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

/**
 * The texture blocks of this isolate: the CLI's (same seed and sigma pairs, so the same textures)
 * with a cache sized for the 128 MB isolate instead of the CLI's 512 MB.
 */
const TEXTURE_CACHE_BYTES = 16 * 1024 * 1024;
let textures: TextureBank | null = null;

const route = createRoute({
  method: 'post',
  path: '/v1/synthesize',
  summary: 'Synthesize tumor(s) in an organ of a CT',
  description:
    'Send the fields and `label` before `image`: the image then streams through (any size within MAX_BODY_BYTES and MAX_SLICES). An image sent first is held, up to MAX_DECOMPRESSED_BYTES.',
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
    408: errors('the body stalled'),
    413: errors('over a size limit'),
    415: errors('not multipart/form-data'),
    422: errors('grids differ or the organ is empty'),
    503: errors('the queue is full (Retry-After)'),
  },
});

const CT_DESCRIPTION = 'freetumor synthetic CT (HU)';
const LABEL_DESCRIPTION = 'freetumor labels + synthetic tumor';

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
  let image: NiftiSliceReader | null = null;
  let responding = false;
  try {
    if (!c.req.raw.body)
      throw new ApiError(400, 'missing_part', 'multipart part "label" (a NIfTI file) is required');
    parts = new MultipartStream(c.req.raw.body, boundary, config.maxBodyBytes);
    const fields = new Map<string, string>();
    let labelBytes: Uint8Array | null = null;
    let heldImage: Uint8Array | null = null;
    let streamedImage: ReadableStream<Uint8Array> | null = null;
    const held = (what: string) => (e: unknown) => {
      if ((e as { code?: string }).code === 'too_large')
        throw new LimitError(what, config.maxDecompressedBytes, 'more');
      throw e;
    };
    for (let part = await parts.next(); part; part = await parts.next()) {
      if (part.filename === null) fields.set(part.name, new TextDecoder().decode(await part.bytes(1024)));
      else if (part.name === 'label' && !labelBytes)
        labelBytes = await part.bytes(config.maxDecompressedBytes).catch(held('label part bytes'));
      else if (part.name === 'image' && !heldImage) {
        if (labelBytes && fields.has('organ')) {
          // Everything the synthesis needs came first: the image streams through the response.
          streamedImage = part.body;
          break;
        }
        heldImage = await part
          .bytes(config.maxDecompressedBytes)
          .catch(held('image part bytes before the label part and the organ field (send them first)'));
      } else await part.body.cancel();
    }
    const parsed = synthesizeParamsSchema.safeParse(Object.fromEntries(fields));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(400, 'invalid_argument', `${issue?.path.join('.') || 'params'}: ${issue?.message}`);
    }
    const params = parsed.data;
    if (!labelBytes || labelBytes.byteLength === 0)
      throw new ApiError(400, 'missing_part', 'multipart part "label" (a NIfTI file) is required');
    const imageBody = streamedImage ?? (heldImage?.byteLength ? bytesStream(heldImage) : null);
    if (!imageBody)
      throw new ApiError(400, 'missing_part', 'multipart part "image" (a NIfTI file) is required');
    heldImage = null;
    image = await openNiftiBody(imageBody, config, signal);
    const label = labelBytes;
    const openLabel = () =>
      NiftiSliceReader.open(bytesStream(label), { limits: sliceLimits(config), signal });
    const resolved = await resolveStreamedLabelMap(image.info, openLabel, params.label_map, params.organ);
    const labelMap = resolved.map;
    textures ??= new TextureBank({ maxBytes: TEXTURE_CACHE_BYTES });
    const synthesis = await StreamedSynthesis.plan(
      image.info,
      openLabel,
      // The ids gathered to resolve the map also choose the tumor id: the label's ids are read once.
      {
        organ: params.organ,
        labelMap,
        type: params.type,
        count: params.count,
        textures,
        labelIds: resolved.found,
      },
      new Rng(params.seed),
      { maxVoxels: config.maxSynthesisVoxels },
    );
    const ct = image;
    const rest = streamedImage ? parts : null;
    const entries: ArchiveEntry[] = [
      {
        name: 'ct.nii.gz',
        type: 'application/gzip',
        open: () =>
          gzipNiftiSliceStream(ct.info.dims, ct.info.affine, ct.info.datatype, synthesis.ctSlices(ct), {
            description: CT_DESCRIPTION,
          }),
      },
      {
        name: 'label.nii.gz',
        type: 'application/gzip',
        open: async () => {
          // The parts after the image: a field there would have changed the synthesis.
          if (rest) await refuseLateFields(rest);
          return gzipNiftiSliceStream(
            synthesis.label.dims,
            synthesis.label.affine,
            synthesis.label.datatype,
            synthesis.labelSlices(),
            { description: LABEL_DESCRIPTION },
          );
        },
      },
      {
        name: 'summary.json',
        type: 'application/json',
        open: () =>
          new TextEncoder().encode(
            JSON.stringify({ seed: params.seed, ...synthesis.summary(), labelMapFrom: resolved.reason }),
          ),
      },
    ];
    const parts_ = parts;
    // The gate stays held until the response has streamed out (or the client left).
    const onClose = (outcome: string, error?: unknown) => {
      if (outcome !== 'done') void parts_.cancel();
      if (outcome === 'error')
        console.log(JSON.stringify({ event: 'synthesize_stream_failed', error: describe(error) }));
      releaseGate();
    };
    responding = true;
    if (params.format === 'multipart') {
      const boundaryOut = `ft-${crypto.randomUUID()}`;
      return c.body(multipartStream(entries, boundaryOut, { onClose }), 200, {
        'content-type': `multipart/mixed; boundary=${boundaryOut}`,
      });
    }
    return c.body(zipStream(entries, { onClose }), 200, {
      'content-type': 'application/zip',
      'content-disposition': 'attachment; filename="synthetic.zip"',
    });
  } catch (e) {
    await image?.cancel();
    await parts?.cancel();
    throw e;
  } finally {
    if (!responding) releaseGate();
  }
});

/** The rest of the body after a streamed image: files are skipped, a field is an error. */
async function refuseLateFields(parts: MultipartStream): Promise<void> {
  for (let part = await parts.next(); part; part = await parts.next()) {
    if (part.filename === null)
      throw new ApiError(400, 'invalid_argument', `field "${part.name.slice(0, 32)}" after the image part`);
    await part.body.cancel();
  }
}

/** A code and message for the log line (never voxel data or names). */
function describe(error: unknown): string {
  const e = error as { code?: string; name?: string };
  return e?.code ?? e?.name ?? 'error';
}

function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

/**
 * The label map of the held label, decided as the CLI decides it (shared/labels/detect.ts): one
 * pass over its slices gathers the ids, so a TotalSegmentator label sent without `label_map` is
 * read as TotalSegmentator, and a `label_map` that does not fit the ids is refused (422).
 */
async function resolveStreamedLabelMap(
  image: NiftiHeaderInfo,
  openLabel: () => Promise<NiftiSliceReader>,
  spec: string | undefined,
  organ: OrganName,
): Promise<ResolvedLabelMap & { found: LabelIds }> {
  const reader = await openLabel();
  const ids = new LabelIdCollector();
  try {
    // Grids first, as the plan checks them: a label of another grid is that error, not its ids'.
    checkSameGrid(image, reader.info);
    for (let slice = await reader.next(); slice; slice = await reader.next()) ids.add(slice);
  } finally {
    await reader.cancel();
  }
  const found = ids.ids();
  return { ...resolveLabelMap(found, { spec, organ, option: 'label_map' }), found };
}
