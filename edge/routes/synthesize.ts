/**
 * POST /v1/synthesize: multipart `image` + `label` + params -> the CT with synthetic tumor(s) and its
 * label, as a zip (default) or multipart/mixed of two .nii.gz files plus a JSON summary. The handcrafted
 * FreeTumor synthesis of shared/synthesis runs on the windowed image; voxels it did not touch keep
 * their exact input HU (the window would otherwise clip them).
 */
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import { zipSync } from 'fflate';
import { FreeTumorError } from '../../shared/errors.ts';
import { HU_WINDOW, windowHU } from '../../shared/intensity/window.ts';
import { organLabels, parseLabelMap, toMergedScheme } from '../../shared/labels/labelmap.ts';
import { Rng } from '../../shared/random.ts';
import { synthesize as synthesizeTumors } from '../../shared/synthesis/index.ts';
import { writeNifti } from '../../shared/volume/nifti.ts';
import type { DataTypeName, Volume } from '../../shared/volume/volume.ts';
import { edgeContext } from '../context.ts';
import { heavyWork } from '../gate.ts';
import { ApiError } from '../middleware/errors.ts';
import { readMultipart, requirePart } from '../middleware/limits.ts';
import { readNiftiBounded } from '../nifti-input.ts';
import { errorSchema, synthesizeMultipart, synthesizeParamsSchema } from '../schemas.ts';
import type { AppEnv } from '../types.ts';

const errors = (description: string) => ({
  description,
  content: { 'application/json': { schema: errorSchema } },
});

/** The HU window synthesis works in (FreeTumor's). */
const WINDOW: [number, number] = [HU_WINDOW[0], HU_WINDOW[1]];

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

function sameGrid(a: Volume, b: Volume): boolean {
  if (a.dims.some((d, i) => d !== b.dims[i])) return false;
  for (let i = 0; i < 12; i++) if (Math.abs(a.affine[i] - b.affine[i]) > 1e-3) return false;
  return true;
}

/** A datatype that can hold `maxValue` (the input's when it can). */
function labelDatatype(given: DataTypeName, maxValue: number): DataTypeName {
  if (given === 'uint8' && maxValue > 255) return 'uint16';
  if (given === 'int8' && maxValue > 127) return 'int16';
  return given;
}

export const synthesize = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const { config } = edgeContext(c.env);
  const { files, fields } = await readMultipart(c.req.raw, config.maxBodyBytes);
  const parsed = synthesizeParamsSchema.safeParse(Object.fromEntries(fields));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiError(400, 'invalid_argument', `${issue?.path.join('.') || 'params'}: ${issue?.message}`);
  }
  const params = parsed.data;
  const map = parseLabelMap(params.label_map ?? 'freetumor');
  const tumorOut = organLabels(map, params.organ).tumorOut;
  return heavyWork.run(async () => {
    const image = readNiftiBounded(requirePart(files, 'image'), config);
    const label = readNiftiBounded(requirePart(files, 'label'), config);
    files.clear();
    if (!sameGrid(image, label))
      throw new FreeTumorError('invalid_geometry', 'image and label are not on the same grid');

    const windowed = windowHU(image.data, WINDOW[0], WINDOW[1]);
    const merged = toMergedScheme(label.data, map, params.organ);
    let organVoxels = 0;
    for (const v of merged) if (v === 1) organVoxels++;
    if (organVoxels === 0)
      throw new FreeTumorError('empty_organ', `the label has no ${params.organ} voxels under the label map`);

    const rng = new Rng(params.seed);
    const result = synthesizeTumors(
      { image: windowed, label: merged, dims: image.dims },
      { type: params.type, count: params.count, organ: params.organ },
      rng,
    );
    const span = WINDOW[1] - WINDOW[0];
    const ct = new Float32Array(image.data.length);
    const outLabel = new Float32Array(label.data.length);
    let tumorVoxels = 0;
    for (let i = 0; i < ct.length; i++) {
      ct[i] = image.data[i] + (result.image[i] - windowed[i]) * span;
      const synthetic = result.plan.label[i] === 3;
      outLabel[i] = synthetic ? tumorOut : label.data[i];
      if (synthetic) tumorVoxels++;
    }
    const ctBytes = writeNifti({ ...image, data: ct }, { datatype: image.datatype, level: 1 });
    const labelBytes = writeNifti(
      { ...label, data: outLabel },
      { datatype: labelDatatype(label.datatype, tumorOut), level: 6 },
    );
    const summary = {
      organ: params.organ,
      type: params.type,
      seed: params.seed,
      tumorLabel: tumorOut,
      tumorVoxels,
      difference: result.difference,
      mode: result.mode,
      tumors: result.plan.tumors.map((t) => ({
        type: t.type,
        voxels: t.voxels,
        volumeMl: t.volumeMl ?? null,
      })),
    };
    const summaryBytes = new TextEncoder().encode(JSON.stringify(summary));
    if (params.format === 'multipart') {
      const boundary = `ft-${crypto.randomUUID()}`;
      return c.body(
        multipartMixed(boundary, [
          ['ct.nii.gz', 'application/gzip', ctBytes],
          ['label.nii.gz', 'application/gzip', labelBytes],
          ['summary.json', 'application/json', summaryBytes],
        ]) as Uint8Array<ArrayBuffer>,
        200,
        { 'content-type': `multipart/mixed; boundary=${boundary}` },
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
  });
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
