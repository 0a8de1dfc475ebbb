/**
 * Loading a published model: parse the manifest, pick the file of the wanted precision, fetch it and
 * check its size and sha256 (WebCrypto, present in Workers, browsers and Node 22) before anything
 * makes a session from it. A mismatch is `model_integrity`: a corrupt or swapped file never runs.
 */
import { FreeTumorError } from '../errors.ts';
import { type ModelFile, type ModelManifest, parseManifest } from './manifest.ts';

export type Precision = ModelFile['precision'];

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Throws `model_integrity` unless the bytes are exactly the file the manifest names. */
export async function verifyModelFile(bytes: Uint8Array, file: ModelFile): Promise<void> {
  if (bytes.byteLength !== file.bytes) {
    throw new FreeTumorError(
      'model_integrity',
      `model file has ${bytes.byteLength} bytes, manifest says ${file.bytes}`,
    );
  }
  if ((await sha256Hex(bytes)) !== file.sha256) {
    throw new FreeTumorError('model_integrity', 'model file sha256 does not match its manifest');
  }
}

/** Parses a manifest; a malformed one is `model_integrity` with the first schema problem named. */
export function readManifest(json: unknown): ModelManifest {
  try {
    return parseManifest(json);
  } catch (e) {
    const issue = (e as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues?.[0];
    const where = issue ? `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}` : String(e);
    throw new FreeTumorError('model_integrity', `model manifest is invalid (${where})`);
  }
}

/** The file of the wanted precision, else the other one (int8 preferred for the edge, fp32 for parity). */
export function pickModelFile(manifest: ModelManifest, prefer: Precision = 'int8'): ModelFile {
  const file = manifest.files.find((f) => f.precision === prefer) ?? manifest.files[0];
  if (!file) throw new FreeTumorError('model_unavailable', `model ${manifest.name} lists no files`);
  return file;
}

export interface LoadedModel {
  manifest: ModelManifest;
  file: ModelFile;
  bytes: Uint8Array;
}

/**
 * Parses the manifest, fetches the chosen file through `fetchFile` (path relative to the manifest)
 * and verifies it. Only a verified model leaves this function.
 */
export async function loadModel(
  manifestJson: unknown,
  fetchFile: (path: string) => Promise<Uint8Array>,
  prefer: Precision = 'int8',
): Promise<LoadedModel> {
  const manifest = readManifest(manifestJson);
  const file = pickModelFile(manifest, prefer);
  if (file.path.includes('..') || file.path.startsWith('/')) {
    throw new FreeTumorError('model_integrity', 'model file path must stay inside the model folder');
  }
  const bytes = await fetchFile(file.path);
  await verifyModelFile(bytes, file);
  return { manifest, file, bytes };
}
