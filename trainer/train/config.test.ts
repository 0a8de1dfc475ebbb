import { describe, expect, it } from 'vitest';
import { applyOverrides, parseRunConfig, parseRunConfigText } from './config.ts';

const minimal = {
  kind: 'segmentation',
  steps: 10,
  data: { datasets: [{ name: 'lits', format: 'msd', path: '/data/lits', organ: 'liver' }] },
};

describe('run config', () => {
  it('fills the reference defaults per kind', () => {
    const seg = parseRunConfig(minimal);
    expect(seg.patchSize).toEqual([96, 96, 96]);
    expect(seg.data.spacing).toEqual([1.5, 1.5, 1.5]);
    expect(seg.data.window).toEqual([-175, 250]);
    expect(seg.optimizer).toMatchObject({ lr: 3e-4, weightDecay: 0.01, amsgrad: true });
    expect(seg.segmentation.qc).toEqual({
      policy: 'segmentor',
      detectionThreshold: 0.7,
      realismThreshold: 0.5,
    });
    expect(seg.model).toMatchObject({ baseChannels: 32, depth: 4, norm: 'instance' });
    const syn = parseRunConfig({ ...minimal, kind: 'synthesis' });
    expect(syn.optimizer).toMatchObject({ lr: 1e-4, beta1: 0, beta2: 0.999, weightDecay: 0 });
    expect(syn.synthesis.advWeight).toBe(0.1);
  });

  it('reports every problem with its path in one line', () => {
    const bad = {
      ...minimal,
      steps: 0,
      patchSize: 90,
      data: { datasets: [{ name: 'x', format: 'zip', path: 'p', organ: 'lung' }] },
    };
    let message = '';
    try {
      parseRunConfig(bad);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^invalid run config: /);
    expect(message).toContain('steps:');
    expect(message).toContain('data.datasets.0.format:');
    expect(message).toContain('data.datasets.0.organ:');
    expect(message).not.toContain('\n');
  });

  it('checks the patch size against the model depth and the QC policy against the runs given', () => {
    expect(() => parseRunConfig({ ...minimal, patchSize: 20 })).toThrow(
      /patchSize: each side must be a multiple of 8/,
    );
    expect(() => parseRunConfig({ ...minimal, segmentation: { mode: 'freetumor' } })).toThrow(
      /segmentation.qcSegmentorRun: qc policy 'segmentor' needs/,
    );
    expect(() => parseRunConfig({ ...minimal, unknownField: 1 })).toThrow(/unrecognized key/i);
    expect(() => parseRunConfigText('{"kind": ')).toThrow(/not valid JSON/);
  });

  it('applies --set overrides with JSON values and rejects prototype keys', () => {
    const raw = applyOverrides(minimal, [
      'segmentation.mode=freetumor',
      'segmentation.qc.policy=none',
      'data.workers=0',
      'patchSize=[32,32,64]',
    ]);
    const c = parseRunConfig(raw);
    expect(c.segmentation.mode).toBe('freetumor');
    expect(c.data.workers).toBe(0);
    expect(c.patchSize).toEqual([32, 32, 64]);
    expect(() => applyOverrides(minimal, ['__proto__.x=1'])).toThrow(/not a valid path/);
    expect(() => applyOverrides(minimal, ['steps'])).toThrow(/key.path=value/);
  });
});
