/**
 * Progress of a long loop (training steps, cases) on stderr. On a terminal: a bar with rate and
 * ETA (cli-progress). Redirected to a file or a CI log: one line at the first step, then at most
 * one every `intervalSeconds` (default 20 s, FREETUMOR_PROGRESS_INTERVAL overrides), and one at
 * the end, so a stage never stays silent for minutes and a log never fills with bars:
 * `segmentation: step 120/600 (20%) 1.35 steps/s ETA 5m 56s loss 0.4123`.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(step: number, values: Record<string, number>): void;
  stop(): void;
}

export interface ProgressOptions {
  /** What is counted: "steps" (default), "cases", ... */
  unit?: string;
  /** Where to write (default process.stderr). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Seconds between lines when not on a terminal. */
  intervalSeconds?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

const DEFAULT_INTERVAL_SECONDS = 20;

export function createProgress(
  total: number,
  start: number,
  label: string,
  options: ProgressOptions = {},
): Progress {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ?? 'steps';
  if (stream.isTTY) return barProgress(total, start, label, unit, stream);
  const fromEnv = Number(process.env.FREETUMOR_PROGRESS_INTERVAL);
  const interval =
    options.intervalSeconds ??
    (Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : DEFAULT_INTERVAL_SECONDS);
  return lineProgress(total, start, label, unit, stream, interval, options.now ?? (() => performance.now()));
}

function barProgress(
  total: number,
  start: number,
  label: string,
  unit: string,
  stream: NodeJS.WritableStream,
): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream: stream as NodeJS.WriteStream,
      format: `${label} |{bar}| {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} | loss {loss}`,
      etaBuffer: 20,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  bar.start(total, start, { rate: '-', loss: '-' });
  return {
    update(step, values) {
      const rate = (step - start) / ((performance.now() - t0) / 1000);
      const loss = values.loss ?? values.g_loss;
      bar.update(step, {
        rate: rate.toFixed(rate < 1 ? 3 : 2),
        loss: loss === undefined ? '-' : loss.toFixed(4),
      });
    },
    stop() {
      bar.stop();
    },
  };
}

function lineProgress(
  total: number,
  start: number,
  label: string,
  unit: string,
  stream: NodeJS.WritableStream,
  intervalSeconds: number,
  now: () => number,
): Progress {
  const t0 = now();
  const singular = unit.endsWith('s') ? unit.slice(0, -1) : unit;
  let lastLine = -Infinity;
  let lastStep = start;
  let lastValues: Record<string, number> = {};
  let printedStep = -1;
  const line = (step: number, values: Record<string, number>) => {
    const seconds = (now() - t0) / 1000;
    const rate = seconds > 0 ? (step - start) / seconds : 0;
    const parts = [
      `${label}: ${singular} ${step}/${total} (${Math.floor((100 * step) / Math.max(total, 1))}%)`,
    ];
    if (step > start && seconds > 0) {
      parts.push(`${rate.toFixed(rate < 1 ? 3 : 2)} ${unit}/s`);
      if (step < total && rate > 0) parts.push(`ETA ${duration((total - step) / rate)}`);
      else parts.push(`in ${duration(seconds)}`);
    }
    const loss = values.loss ?? values.g_loss;
    if (loss !== undefined) parts.push(`loss ${loss.toFixed(4)}`);
    stream.write(`${parts.join(' ')}\n`);
    printedStep = step;
  };
  return {
    update(step, values) {
      lastStep = step;
      lastValues = values;
      const t = now();
      if (printedStep < 0 || t - lastLine >= intervalSeconds * 1000) {
        lastLine = t;
        line(step, values);
      }
    },
    stop() {
      if (lastStep > start && printedStep !== lastStep) line(lastStep, lastValues);
    },
  };
}

/** 356 -> "5m 56s", 7322 -> "2h 2m", 42 -> "42s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
