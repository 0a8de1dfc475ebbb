/**
 * The demo's stage log: each stage runs once, its wall time is measured, and it ends as done,
 * skipped (with the reason: an earlier stage did not produce its input, or the user turned it off)
 * or failed (any error, a broken import included). Lines go to stderr so
 * a user sees where the minutes go; the same records feed the report's timing table.
 */

export type StageStatus = 'done' | 'skipped' | 'failed';

export interface StageRecord {
  name: string;
  status: StageStatus;
  seconds: number;
  /** One line: what the stage produced, or why it was skipped or failed. */
  note: string;
}

/** Thrown inside a stage to end it as skipped; never used to hide a result. */
export class StageSkip extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'StageSkip';
  }
}

/** Thrown when the user interrupts the demo (Ctrl-C): no further stage starts. */
export class DemoInterrupted extends Error {
  constructor() {
    super('interrupted');
    this.name = 'DemoInterrupted';
  }
}

export class StageLog {
  readonly records: StageRecord[] = [];
  private readonly write: (line: string) => void;
  private readonly started = performance.now();
  private readonly interrupted: () => boolean;

  constructor(write: (line: string) => void, interrupted: () => boolean = () => false) {
    this.write = write;
    this.interrupted = interrupted;
  }

  /** Elapsed seconds since the demo started. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  info(message: string): void {
    this.write(`        ${message}`);
  }

  /**
   * Runs one stage. `fn` returns its one-line note. A StageSkip ends the stage as skipped; any
   * other error ends it as failed and is rethrown only when `required` (later stages cannot run
   * without it), so a broken optional stage never hides the others' results.
   */
  async run<T>(
    name: string,
    fn: () => Promise<{ value: T; note: string }>,
    options: { required?: boolean } = {},
  ): Promise<T | null> {
    if (this.interrupted()) throw new DemoInterrupted();
    const t0 = performance.now();
    this.write(`[${this.clock()}] ${name} ...`);
    try {
      const { value, note } = await fn();
      // A stage the user interrupted keeps what it produced (the partial report shows it); the next one does not start.
      this.finish(name, 'done', t0, this.interrupted() ? `${note} (interrupted)` : note);
      return value;
    } catch (e) {
      if (e instanceof DemoInterrupted || this.interrupted()) {
        this.finish(name, 'failed', t0, 'interrupted by the user');
        throw e instanceof DemoInterrupted ? e : new DemoInterrupted();
      }
      if (e instanceof StageSkip) {
        this.finish(name, 'skipped', t0, e.message);
        return null;
      }
      const message = e instanceof Error ? e.message : String(e);
      this.finish(name, 'failed', t0, message.split('\n')[0].slice(0, 300));
      if (options.required) throw e;
      return null;
    }
  }

  /** Records a stage that cannot run because an earlier one did not produce its input. */
  skip(name: string, reason: string): void {
    this.records.push({ name, status: 'skipped', seconds: 0, note: reason });
    this.write(`[${this.clock()}] ${name}: skipped: ${reason}`);
  }

  private finish(name: string, status: StageStatus, t0: number, note: string): void {
    const seconds = (performance.now() - t0) / 1000;
    this.records.push({ name, status, seconds, note });
    const head = status === 'done' ? 'done' : `${status}:`;
    this.write(`[${this.clock()}] ${name}: ${head} ${note} (${seconds.toFixed(1)} s)`);
  }

  private clock(): string {
    const s = Math.floor(this.elapsed());
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  }
}
