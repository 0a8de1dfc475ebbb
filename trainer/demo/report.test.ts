import { describe, expect, it } from 'vitest';
import { type Report, renderChart, renderChartSvg, renderHtml, renderMarkdown } from './report.ts';

const report: Report = {
  title: 'Demo <report>',
  created: '2026-11-28T00:00:00Z',
  summary: ['trained 3 models'],
  tables: [
    {
      title: 'Metrics',
      columns: ['model', 'tumor Dice'],
      rows: [
        ['baseline', 0.41234],
        ['freetumor', null],
      ],
    },
  ],
  charts: [
    {
      title: 'loss',
      yLabel: 'DiceCE',
      curves: [
        {
          label: 'baseline',
          points: [
            { step: 0, value: 1.2 },
            { step: 10, value: 0.6 },
          ],
        },
      ],
    },
  ],
  figures: [{ title: 'preview', file: 'preview.png', caption: 'a synthetic tumor' }],
};

describe('report', () => {
  it('escapes text and renders tables, charts and figures', () => {
    const html = renderHtml(report);
    expect(html).toContain('Demo &#60;report&#62;');
    expect(html).not.toContain('<report>');
    expect(html).toContain('<td>0.412</td>');
    expect(html).toContain('<td>-</td>');
    expect(html).toContain('<polyline');
    expect(html).toContain('src="preview.png"');
  });

  it('maps the curve onto the plot area (first point left-bottom of the last for a falling loss)', () => {
    const svg = renderChart(report.charts[0]);
    const pts = /points="([^"]+)"/
      .exec(svg)![1]
      .split(' ')
      .map((p) => p.split(',').map(Number));
    expect(pts[0][0]).toBeLessThan(pts[1][0]);
    expect(pts[0][1]).toBeLessThan(pts[1][1]); // higher loss is drawn higher (smaller y)
  });

  it('renders a Markdown twin', () => {
    const md = renderMarkdown(report);
    expect(md).toContain('| baseline | 0.412 |');
    expect(md).toContain('![preview](preview.png)');
  });
});

describe('report files', () => {
  it('embeds the PNGs as data URIs when their bytes are given (one self-contained page)', () => {
    const html = renderHtml(report, {
      images: new Map([['preview.png', Uint8Array.from([137, 80, 78, 71])]]),
    });
    expect(html).toContain('src="data:image/png;base64,iVBORw=="');
  });

  it('writes a chart as a standalone SVG, which the Markdown twin links', () => {
    const svg = renderChartSvg(report.charts[0]);
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg).toContain('<polyline');
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(renderMarkdown({ ...report, charts: [{ ...report.charts[0], file: 'loss.svg' }] })).toContain(
      '![loss](loss.svg)',
    );
  });
});
