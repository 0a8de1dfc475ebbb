/**
 * The demo's report: one self-contained HTML page (inline SVG plots, PNGs beside it) and a
 * Markdown twin, so it reads in a browser and in a terminal or a code review alike.
 */

export interface Curve {
  /** Legend label. */
  label: string;
  points: Array<{ step: number; value: number }>;
}

export interface Chart {
  title: string;
  yLabel: string;
  curves: Curve[];
  /** Standalone SVG written beside the report (relative path), which the Markdown twin shows. */
  file?: string;
}

export interface Figure {
  title: string;
  /** PNG path relative to the report folder. */
  file: string;
  caption: string;
  /** Shown at full width (side-by-side panels). */
  wide?: boolean;
}

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number | null>>;
  note?: string;
}

export interface Report {
  title: string;
  /** One line shown first: what was learned. */
  verdict?: string;
  /** Figures shown right after the verdict (truth / baseline / FreeTumor side by side). */
  leadFigures?: Figure[];
  created: string;
  summary: string[];
  tables: Table[];
  charts: Chart[];
  figures: Figure[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function formatCell(v: string | number | null): string {
  if (v === null) return '-';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
  }
  return v;
}

/** A line chart as inline SVG: axes with min/max ticks, one polyline per curve, a legend. */
export function renderChart(chart: Chart, width = 560, height = 260): string {
  const pad = { left: 56, right: 16, top: 28, bottom: 36 };
  const all = chart.curves.flatMap((c) => c.points).filter((p) => Number.isFinite(p.value));
  if (all.length === 0) return `<p>${escapeHtml(chart.title)}: no data</p>`;
  const xMin = Math.min(...all.map((p) => p.step));
  const xMax = Math.max(...all.map((p) => p.step));
  let yMin = Math.min(...all.map((p) => p.value));
  let yMax = Math.max(...all.map((p) => p.value));
  if (yMax === yMin) {
    yMax += 0.5;
    yMin -= 0.5;
  }
  const sx = (x: number) =>
    pad.left + ((x - xMin) / Math.max(1e-9, xMax - xMin)) * (width - pad.left - pad.right);
  const sy = (y: number) =>
    height - pad.bottom - ((y - yMin) / (yMax - yMin)) * (height - pad.top - pad.bottom);
  const lines = chart.curves.map((c, i) => {
    const pts = c.points
      .filter((p) => Number.isFinite(p.value))
      .map((p) => `${sx(p.step).toFixed(1)},${sy(p.value).toFixed(1)}`)
      .join(' ');
    return `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts}"/>`;
  });
  const legend = chart.curves.map(
    (c, i) =>
      `<text x="${pad.left + 8 + i * 150}" y="${pad.top - 10}" font-size="11" fill="${COLORS[i % COLORS.length]}">${escapeHtml(c.label)}</text>`,
  );
  const axis = [
    `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#444"/>`,
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#444"/>`,
    `<text x="${pad.left - 6}" y="${sy(yMax) + 4}" font-size="10" text-anchor="end">${formatCell(yMax)}</text>`,
    `<text x="${pad.left - 6}" y="${sy(yMin) + 4}" font-size="10" text-anchor="end">${formatCell(yMin)}</text>`,
    `<text x="${sx(xMin)}" y="${height - pad.bottom + 14}" font-size="10" text-anchor="middle">${xMin}</text>`,
    `<text x="${sx(xMax)}" y="${height - pad.bottom + 14}" font-size="10" text-anchor="middle">${xMax}</text>`,
    `<text x="${(pad.left + width - pad.right) / 2}" y="${height - 6}" font-size="11" text-anchor="middle">step</text>`,
    `<text x="12" y="${(pad.top + height - pad.bottom) / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 ${(pad.top + height - pad.bottom) / 2})">${escapeHtml(chart.yLabel)}</text>`,
  ];
  return [
    `<figure><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(chart.title)}">`,
    ...axis,
    ...lines,
    ...legend,
    `</svg><figcaption>${escapeHtml(chart.title)}</figcaption></figure>`,
  ].join('\n');
}

function renderTable(t: Table): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows
    .map((r) => `<tr>${r.map((v) => `<td>${escapeHtml(formatCell(v))}</td>`).join('')}</tr>`)
    .join('\n');
  const note = t.note ? `<p class="note">${escapeHtml(t.note)}</p>` : '';
  return `<h2>${escapeHtml(t.title)}</h2>\n<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>${note}`;
}

/** The chart as a standalone SVG file (the figure's inner SVG with an XML prolog). */
export function renderChartSvg(chart: Chart, width = 560, height = 260): string {
  const html = renderChart(chart, width, height);
  const start = html.indexOf('<svg');
  const end = html.indexOf('</svg>');
  if (start < 0 || end < 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="40"><text x="8" y="24" font-size="12">${escapeHtml(chart.title)}: no data</text></svg>\n`;
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n${html.slice(start, end + 6)}\n`;
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export interface HtmlOptions {
  /** PNG bytes by figure file: embedded as data URIs, so the page is one self-contained file. */
  images?: ReadonlyMap<string, Uint8Array>;
}

export function renderHtml(r: Report, options: HtmlOptions = {}): string {
  const src = (file: string) => {
    const bytes = options.images?.get(file);
    return bytes ? `data:image/png;base64,${base64(bytes)}` : escapeHtml(file);
  };
  const figureHtml = (list: readonly Figure[]) =>
    list
      .map(
        (f) =>
          `<figure${f.wide ? ' class="wide"' : ''}><img src="${src(f.file)}" alt="${escapeHtml(f.title)}"><figcaption><b>${escapeHtml(f.title)}</b>: ${escapeHtml(f.caption)}</figcaption></figure>`,
      )
      .join('\n');
  const figures = figureHtml(r.figures);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top}img{max-width:520px;image-rendering:pixelated;border:1px solid #ddd}
figure.wide{display:block}figure.wide img{max-width:100%}.verdict{font-size:1.1em;background:#f6f8fa;padding:.6em;border-left:4px solid #1f77b4}
.note{color:#555;font-size:.9em}
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
${r.verdict ? `<p class="verdict"><b>Verdict:</b> ${escapeHtml(r.verdict)}</p>` : ''}
${figureHtml(r.leadFigures ?? [])}
<p>${escapeHtml(r.created)}</p>
<ul>${r.summary.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
${r.tables.map(renderTable).join('\n')}
<h2>Training curves</h2>
${r.charts.map((c) => renderChart(c)).join('\n')}
<h2>Pictures</h2>
${figures}
</body></html>
`;
}

export function renderMarkdown(r: Report): string {
  const lines: string[] = [`# ${r.title}`, ''];
  if (r.verdict) lines.push(`**Verdict:** ${r.verdict}`, '');
  for (const f of r.leadFigures ?? [])
    lines.push(`![${f.title}](${f.file})`, '', `${f.title}: ${f.caption}`, '');
  lines.push(r.created, '', ...r.summary.map((s) => `- ${s}`), '');
  for (const t of r.tables) {
    lines.push(
      `## ${t.title}`,
      '',
      `| ${t.columns.join(' | ')} |`,
      `|${t.columns.map(() => '---').join('|')}|`,
    );
    for (const row of t.rows) lines.push(`| ${row.map(formatCell).join(' | ')} |`);
    if (t.note) lines.push('', t.note);
    lines.push('');
  }
  lines.push('## Training curves', '');
  const files = r.charts.filter((c) => c.file);
  for (const c of files) lines.push(`![${c.title}](${c.file})`, '');
  if (files.length < r.charts.length) lines.push('Training curves are plotted in report.html.', '');
  lines.push('## Pictures', '');
  for (const f of r.figures) lines.push(`![${f.title}](${f.file})`, '', `${f.title}: ${f.caption}`, '');
  return lines.join('\n');
}
