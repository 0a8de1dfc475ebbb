/**
 * The statistics of instance/group normalisation from per-channel shifted moments (what the
 * chan_moments kernel sums): one home for the formula, used by the engine's InstanceNormalization
 * and by the trainer's fused norm kernel.
 */

/**
 * Mean and 1/sqrt(var + epsilon) of each group of `c / groups` channels over `m` voxels, from
 * sum[k] = sum_v (x - shift[k]) and sq[k] = sum_v (x - shift[k])^2 per channel k.
 */
export function groupStatistics(
  sum: ArrayLike<number>,
  sq: ArrayLike<number>,
  shift: ArrayLike<number>,
  m: number,
  groups: number,
  epsilon: number,
): { mean: Float64Array; rstd: Float64Array } {
  const c = sum.length;
  const cg = c / groups;
  const count = m * cg;
  const mean = new Float64Array(groups);
  const rstd = new Float64Array(groups);
  for (let j = 0; j < groups; j++) {
    let total = 0;
    for (let k = j * cg; k < (j + 1) * cg; k++) total += sum[k] + m * shift[k];
    const mu = total / count;
    // sum over the group of (x - mean)^2, with x - mean = (x - shift) + (shift - mean).
    let squares = 0;
    for (let k = j * cg; k < (j + 1) * cg; k++) {
      const delta = shift[k] - mu;
      squares += sq[k] + 2 * delta * sum[k] + m * delta * delta;
    }
    mean[j] = mu;
    rstd[j] = 1 / Math.sqrt(Math.max(0, squares / count) + epsilon);
  }
  return { mean, rstd };
}
