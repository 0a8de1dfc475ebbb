/**
 * The run's metrics log: one JSON object per line (`{"step": n, "time": ..., ...}`). On resume
 * the lines past the checkpoint's step are dropped, so the log matches the trajectory once.
 */
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export type MetricValues = Record<string, number | string | boolean | null>;

export class MetricsLog {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  append(step: number, values: MetricValues): void {
    appendFileSync(this.path, `${JSON.stringify({ step, time: new Date().toISOString(), ...values })}\n`);
  }

  /** Keeps only the records with step <= `step` (atomic rewrite). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (!line.trim()) return false;
        try {
          return (JSON.parse(line) as { step: number }).step <= step;
        } catch {
          return false;
        }
      });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, kept.length ? `${kept.join('\n')}\n` : '');
    renameSync(tmp, this.path);
  }

  read(): Array<{ step: number } & MetricValues> {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
  }
}
