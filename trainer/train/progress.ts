/** A progress bar with steps/s and ETA on stderr, only when stderr is a terminal. */
import cliProgress from 'cli-progress';

export interface Progress {
  update(step: number, values: Record<string, number>): void;
  stop(): void;
}

export function createProgress(total: number, start: number, label: string): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} |{bar}| {value}/{total} steps | {rate} steps/s | ETA {eta_formatted} | loss {loss}`,
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
