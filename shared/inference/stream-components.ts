/**
 * 26-connected components of a volume that arrives one plane at a time (union-find over
 * provisional labels, as shared/labels/components.ts, but holding only the previous plane's labels).
 * Per-component statistics are kept at the roots: voxel count plus optional sums and minima that
 * the caller adds per voxel. Provisional labels are numbered in scan order and a union keeps the
 * smaller root, so when planes arrive in raster order a component's root is the label of its first
 * voxel: the order connectedComponents() numbers components in.
 */
import { LimitError } from '../errors.ts';

/** Most provisional labels (a guard against pathological masks, far above any real segmentation). */
export const MAX_PROVISIONAL_LABELS = 1 << 26;

export class PlaneComponents {
  readonly n1: number;
  readonly n2: number;
  private prev: Int32Array;
  private cur: Int32Array;
  private parent = new Int32Array(1024);
  /** Per label: voxel count, then `sums` running sums, then `mins` running minima. */
  private stats: Float64Array[];
  private readonly nSums: number;
  private readonly nMins: number;
  private next = 1;
  private first = true;

  constructor(n1: number, n2: number, sums = 0, mins = 0) {
    this.n1 = n1;
    this.n2 = n2;
    this.prev = new Int32Array(n1 * n2);
    this.cur = new Int32Array(n1 * n2);
    this.nSums = sums;
    this.nMins = mins;
    this.stats = Array.from({ length: 1 + sums + mins }, () => new Float64Array(1024));
  }

  find(x: number): number {
    const parent = this.parent;
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }

  private union(a: number, b: number): number {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return ra;
    const [root, child] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[child] = root;
    const s = this.stats;
    s[0][root] += s[0][child];
    for (let q = 1; q <= this.nSums; q++) s[q][root] += s[q][child];
    for (let q = 1 + this.nSums; q < s.length; q++) if (s[q][child] < s[q][root]) s[q][root] = s[q][child];
    return root;
  }

  private newLabel(): number {
    if (this.next >= this.parent.length) {
      if (this.next >= MAX_PROVISIONAL_LABELS)
        throw new LimitError('connected-component labels', MAX_PROVISIONAL_LABELS, 'more');
      const parent = new Int32Array(this.parent.length * 2);
      parent.set(this.parent);
      this.parent = parent;
      this.stats = this.stats.map((a, q) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        if (q > this.nSums) b.fill(Number.POSITIVE_INFINITY, a.length);
        return b;
      });
    }
    const l = this.next++;
    this.parent[l] = l;
    for (let q = 1 + this.nSums; q < this.stats.length; q++) this.stats[q][l] = Number.POSITIVE_INFINITY;
    return l;
  }

  /**
   * Labels the voxels of the next plane where `mask[v] === value` (v = p1 + n1 * p2) and returns the
   * plane's provisional labels (valid until the plane after next; 0 = not in the mask). Counts each
   * voxel; `sums`/`mins` are added by the caller through `addSum`/`addMin` with the returned labels.
   */
  push(mask: ArrayLike<number>, value: number): Int32Array {
    const { n1, n2 } = this;
    const tmp = this.prev;
    this.prev = this.cur;
    this.cur = tmp;
    const cur = this.cur;
    const prev = this.prev;
    const hasPrev = !this.first;
    this.first = false;
    cur.fill(0);
    for (let q = 0; q < n2; q++) {
      for (let p = 0; p < n1; p++) {
        const v = p + n1 * q;
        if (mask[v] !== value) continue;
        let label = 0;
        // Scanned neighbours in this plane: (-1, 0), (-1, -1), (0, -1), (+1, -1).
        if (p > 0 && cur[v - 1]) label = this.merge(label, cur[v - 1]);
        if (q > 0) {
          const up = v - n1;
          if (p > 0 && cur[up - 1]) label = this.merge(label, cur[up - 1]);
          if (cur[up]) label = this.merge(label, cur[up]);
          if (p < n1 - 1 && cur[up + 1]) label = this.merge(label, cur[up + 1]);
        }
        if (hasPrev) {
          for (let dq = -1; dq <= 1; dq++) {
            const qq = q + dq;
            if (qq < 0 || qq >= n2) continue;
            for (let dp = -1; dp <= 1; dp++) {
              const pp = p + dp;
              if (pp < 0 || pp >= n1) continue;
              const o = prev[pp + n1 * qq];
              if (o) label = this.merge(label, o);
            }
          }
        }
        if (label === 0) label = this.newLabel();
        cur[v] = label;
        this.stats[0][this.find(label)]++;
      }
    }
    return cur;
  }

  private merge(label: number, other: number): number {
    return label === 0 ? this.find(other) : this.union(label, other);
  }

  /** Labels of the previous plane (0 where none), valid until the next push. */
  previous(): Int32Array {
    return this.prev;
  }

  addSum(label: number, which: number, value: number): void {
    this.stats[1 + which][this.find(label)] += value;
  }

  addMin(label: number, which: number, value: number): void {
    const root = this.find(label);
    const s = this.stats[1 + this.nSums + which];
    if (value < s[root]) s[root] = value;
  }

  /** Every root (component) with its count, sums and minima, in root order (first voxel first). */
  components(): Array<{ root: number; size: number; sums: number[]; mins: number[] }> {
    const out: Array<{ root: number; size: number; sums: number[]; mins: number[] }> = [];
    for (let l = 1; l < this.next; l++) {
      if (this.parent[l] !== l) continue;
      out.push({
        root: l,
        size: this.stats[0][l],
        sums: Array.from({ length: this.nSums }, (_, q) => this.stats[1 + q][l]),
        mins: Array.from({ length: this.nMins }, (_, q) => this.stats[1 + this.nSums + q][l]),
      });
    }
    return out;
  }

  get labelCount(): number {
    return this.next - 1;
  }
}
