/**
 * Measuring the Worker from outside while a request runs: the isolate's memory (V8 heap and
 * ArrayBuffer backing stores through workerd's inspector, ORT's wasm memory from /health) sampled
 * during the request, and the CPU time the workerd process spent on it (/proc, Linux).
 */
import { readdirSync, readFileSync } from 'node:fs';

const MiB = 1024 * 1024;

export interface HeapUsage {
  usedSize: number;
  totalSize: number;
  /** ArrayBuffer backing stores outside the V8 heap (newer V8; 0 when not reported). */
  backingStorageSize: number;
}

/** One inspector connection to the user worker, reused for samples. */
export class IsolateInspector {
  private ws: WebSocket | null = null;
  private id = 0;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  private async connect(): Promise<WebSocket> {
    if (this.ws) return this.ws;
    const list = (await (await fetch(`http://127.0.0.1:${this.port}/json/list`)).json()) as Array<{
      id: string;
      webSocketDebuggerUrl: string;
    }>;
    const target = list.find((t) => t.id.startsWith('core:user:')) ?? list[0];
    if (!target) throw new Error('no user worker on the inspector');
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    ws.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data));
      const done = this.waiting.get(msg.id);
      if (done) {
        this.waiting.delete(msg.id);
        done(msg.result);
      }
    };
    this.ws = ws;
    return ws;
  }

  async heap(): Promise<HeapUsage> {
    const ws = await this.connect();
    const id = ++this.id;
    const reply = new Promise<unknown>((resolve) => this.waiting.set(id, resolve));
    ws.send(JSON.stringify({ id, method: 'Runtime.getHeapUsage' }));
    const r = (await reply) as Partial<HeapUsage>;
    return {
      usedSize: r.usedSize ?? 0,
      totalSize: r.totalSize ?? 0,
      backingStorageSize: r.backingStorageSize ?? 0,
    };
  }

  close(): void {
    this.ws?.close();
    this.ws = null;
  }
}

/** Samples the heap every `everyMs` until `stop()`; returns the largest total seen. */
export function sampleHeap(inspector: IsolateInspector, everyMs = 200) {
  let peak: HeapUsage = { usedSize: 0, totalSize: 0, backingStorageSize: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const h = await inspector.heap();
        if (h.totalSize + h.backingStorageSize > peak.totalSize + peak.backingStorageSize) peak = h;
      } catch {
        // The inspector can be busy while the isolate runs a long synchronous step; try again.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop(): Promise<HeapUsage> {
      running = false;
      await loop;
      return peak;
    },
  };
}

/** Pids of the workerd processes under `parent` (Miniflare's or wrangler's). */
export function workerdPids(parent = process.pid): number[] {
  const out: number[] = [];
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      try {
        if (readFileSync(`/proc/${c}/comm`, 'utf8').trim().startsWith('workerd')) out.push(c);
      } catch {
        // gone
      }
      walk(c);
    }
  };
  walk(parent);
  return out;
}

/** User + system CPU seconds of a process (Linux). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field.
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Resident set size of a process in bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}
