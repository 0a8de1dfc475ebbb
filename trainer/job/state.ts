/**
 * The job's record in the bucket (`jobs/<id>/state.json`): what phase it reached, who runs it and
 * how it ended. It makes the job idempotent (a finished id is not trained again) and safe against
 * a second copy running at the same time (a live owner's heartbeat is respected), while a retry of
 * the same Batch job (spot interruption) takes over its own record and resumes. Every write of the
 * record is conditional on the ETag last seen, so of two processes claiming a job at once exactly
 * one wins, and a process whose job was taken over stops at its next write.
 */
import type { GateDecision } from './promotion.ts';
import type { ObjectStore } from './storage.ts';

export type JobStatus = 'running' | 'failed' | 'published' | 'rejected';
export const FINISHED: readonly JobStatus[] = ['published', 'rejected'];

export interface JobState {
  jobId: string;
  status: JobStatus;
  dataManifestKey: string;
  /** The version the model gets if promoted (fixed at the first attempt, so a resume keeps it). */
  version: string;
  attempts: number;
  /** Who runs it: the Batch job id (same across retries) or host:pid. */
  owner: string;
  startedAt: string;
  heartbeatAt: string;
  phase: string;
  metrics?: Record<string, number>;
  decision?: GateDecision;
  publishedKeys?: string[];
  error?: string;
}

export function stateKey(jobId: string): string {
  return `jobs/${jobId}/state.json`;
}

/** The record and its ETag (what a compare-and-swap of it needs), or null when there is none. */
export async function readState(
  store: ObjectStore,
  jobId: string,
): Promise<{ state: JobState; etag: string } | null> {
  const found = await store.getVersioned(stateKey(jobId));
  if (found === null) return null;
  return { state: JSON.parse(new TextDecoder().decode(found.bytes)) as JobState, etag: found.etag };
}

/**
 * Writes the record only if it is still the one this process last read or wrote (`etag`; null: it
 * must not exist yet). Returns the new ETag, or null when another process changed it in between:
 * a claim lost to a racing copy, or a stale job taken over. Read-then-write would let both win.
 */
export async function writeStateIf(
  store: ObjectStore,
  state: JobState,
  etag: string | null,
): Promise<string | null> {
  return store.putIf(
    stateKey(state.jobId),
    `${JSON.stringify(state, null, 2)}\n`,
    etag === null ? { ifNoneMatch: '*' } : { ifMatch: etag },
  );
}

/** The job's record changed under this process: another owner holds the job now. */
export class ClaimLost extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was taken over by another process; stopping`);
    this.name = 'ClaimLost';
  }
}

/**
 * Whether another live process holds the job: it is running, owned by someone else, and its
 * heartbeat is younger than `staleMs`.
 */
export function heldByOther(state: JobState | null, owner: string, now: number, staleMs: number): boolean {
  if (state?.status !== 'running' || state.owner === owner) return false;
  return now - Date.parse(state.heartbeatAt) < staleMs;
}
