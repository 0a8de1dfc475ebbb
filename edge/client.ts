/**
 * A typed client for the edge API, usable from Node, browsers and other Workers. `api` is Hono's
 * RPC client (paths, query and JSON responses typed from the app's routes); the helpers wrap the
 * binary and multipart routes, whose bodies the RPC types cannot describe, and turn error bodies
 * into `EdgeApiError`s.
 */
import { hc } from 'hono/client';
import type { OrganName } from '../shared/labels/organs.ts';
import type { SegmentationStatistics } from '../shared/segmentation/statistics.ts';
import type { AppType } from './app.ts';

export interface EdgeErrorBody {
  error: { code: string; message: string };
}

export class EdgeApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'EdgeApiError';
    this.status = status;
    this.code = code;
  }
}

export interface ClientOptions {
  /** Another fetch (tests, service bindings). */
  fetch?: typeof fetch;
}

type Organ = OrganName;
export type NiftiPart = Uint8Array | Blob;

async function check(res: Response): Promise<Response> {
  if (res.ok) return res;
  let body: Partial<EdgeErrorBody> = {};
  try {
    body = (await res.json()) as Partial<EdgeErrorBody>;
  } catch {
    // A non-JSON error (a proxy in between): the status says enough.
  }
  throw new EdgeApiError(
    res.status,
    body.error?.code ?? 'http_error',
    body.error?.message ?? `HTTP ${res.status}`,
  );
}

function blob(part: NiftiPart): Blob {
  return part instanceof Blob
    ? part
    : new Blob([part as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
}

export function createEdgeClient(baseUrl: string, apiKey: string, options: ClientOptions = {}) {
  const headers = { authorization: `Bearer ${apiKey}` };
  const doFetch = options.fetch ?? fetch;
  const api = hc<AppType>(baseUrl, { headers, fetch: doFetch });
  const url = (path: string) => new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
  const postForm = (path: string, parts: Record<string, NiftiPart | string | number | undefined>) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(parts)) {
      if (v === undefined) continue;
      if (typeof v === 'string' || typeof v === 'number') form.set(k, String(v));
      else form.set(k, blob(v), `${k}.nii.gz`);
    }
    return doFetch(url(path), { method: 'POST', headers, body: form });
  };

  return {
    api,
    async health() {
      return (await (await check(await api.health.$get())).json()) as Awaited<
        ReturnType<Awaited<ReturnType<typeof api.health.$get>>['json']>
      >;
    },
    async models() {
      const res = await check((await api.v1.models.$get()) as Response);
      return (await res.json()) as { updated: string; models: Record<string, Record<string, unknown>> };
    },
    /** The uint8 NIfTI mask (gzip) on the input's grid. */
    async segmentMask(nifti: NiftiPart, organ?: Organ): Promise<Uint8Array> {
      const res = await check(
        await doFetch(url(`v1/segment?format=nifti${organ ? `&organ=${organ}` : ''}`), {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/octet-stream' },
          body: blob(nifti),
        }),
      );
      return new Uint8Array(await res.arrayBuffer());
    },
    /** The JSON statistics (shared/segmentation/statistics.ts). */
    async segmentJson(nifti: NiftiPart, organ?: Organ) {
      const res = await check(
        await doFetch(url(`v1/segment?format=json${organ ? `&organ=${organ}` : ''}`), {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/octet-stream' },
          body: blob(nifti),
        }),
      );
      return (await res.json()) as SegmentationStatistics;
    },
    async score(image: NiftiPart, label: NiftiPart, organ?: Organ) {
      // The label first: the Worker then streams the image and keeps only the crop around the tumor.
      const res = await check(await postForm('v1/score', { label, image, organ }));
      return (await res.json()) as {
        realism: number | null;
        detection: number | null;
        accepted: boolean;
        threshold: { detection: number; realism: number; policy: string };
        model: Record<string, string>;
      };
    },
    /** A zip of ct.nii.gz, label.nii.gz and summary.json. */
    async synthesize(
      image: NiftiPart,
      label: NiftiPart,
      params: { organ: Organ; type?: string; count?: number; seed?: number; labelMap?: string },
    ): Promise<Uint8Array> {
      const { labelMap, ...rest } = params;
      const res = await check(
        // Fields and label first: the Worker then streams the image through (any size).
        await postForm('v1/synthesize', { ...rest, label_map: labelMap, label, image }),
      );
      return new Uint8Array(await res.arrayBuffer());
    },
    async retrain(
      body: { jobName?: string; reason?: string; dataManifestKey?: string; force?: boolean } = {},
    ) {
      const res = await check((await api.v1.admin.retrain.$post({ json: body })) as Response);
      return (await res.json()) as { submitted: boolean; jobId: string; jobName: string };
    },
  };
}

export type EdgeClient = ReturnType<typeof createEdgeClient>;
