/**
 * The job's record in the bucket (`jobs/<id>/state.json`): what phase it reached, who runs it and
 * how it ended. It makes the job idempotent (a finished id is not trained again) and safe against
 * a second copy running at the same time (a live owner's heartbeat is respected), while a retry of
 * the same Batch job (spot interruption) takes over its own record and resumes.
 */
import type { GateDecision } from './promotion.ts';
import { getJson, type ObjectStore, putJson } from './storage.ts';

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

export async function readState(store: ObjectStore, jobId: string): Promise<JobState | null> {
  return getJson<JobState>(store, stateKey(jobId));
}

export async function writeState(store: ObjectStore, state: JobState): Promise<void> {
  await putJson(store, stateKey(state.jobId), state);
}

/**
 * Whether another live process holds the job: it is running, owned by someone else, and its
 * heartbeat is younger than `staleMs`.
 */
export function heldByOther(state: JobState | null, owner: string, now: number, staleMs: number): boolean {
  if (state?.status !== 'running' || state.owner === owner) return false;
  return now - Date.parse(state.heartbeatAt) < staleMs;
}
