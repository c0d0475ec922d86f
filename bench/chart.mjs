// Draws one metric of the benchmark results as an SVG bar chart: a group of horizontal bars per
// case, one bar per system (its median, with a whisker from min to max). Figures spanning more
// than 30× are drawn on a log scale, and the chart says so.
import { format } from './stats.mjs';

const COLORS = ['#d9480f', '#1971c2', '#2f9e44', '#9c36b5', '#868e96', '#e8590c', '#0c8599', '#5c940d'];
const WIDTH = 760;
const LABEL = 210; // the left column: case and system names
const BAR = 16;
const GAP = 4;
const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The SVG text of `metric` (rows of systems' { median, min, max }); `systems` = [[id, name]]. */
export function chart(metric, systems) {
  const values = metric.rows.flatMap((row) => systems.map(([s]) => row.systems[s]).filter((r) => r?.median > 0))
    .flatMap((r) => [r.min, r.median, r.max]).filter((x) => x > 0);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const log = hi / lo > 30;
  const plot = WIDTH - LABEL - 90;
  const floor = log ? 10 ** Math.floor(Math.log10(lo)) : 0;
  const scale = (x) => (log
    ? (Math.log10(x / floor) / Math.log10((hi * 1.05) / floor)) * plot
    : (x / (hi * 1.05)) * plot);
  let y = 44;
  const parts = [];
  for (const row of metric.rows) {
    parts.push(`<text x="8" y="${y + 12}" font-weight="bold">${escape(row.case)}</text>`);
    y += 20;
    systems.forEach(([system, name], i) => {
      const r = row.systems[system];
      if (!r) return;
      parts.push(`<text x="${LABEL - 6}" y="${y + 12}" text-anchor="end">${escape(name)}</text>`);
      if (r.median > 0) {
        const w = Math.max(1, scale(r.median));
        parts.push(`<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLORS[i % COLORS.length]}"/>`);
        if (r.max > r.min) {
          const [a, b] = [scale(Math.max(r.min, floor || r.min)), scale(r.max)].map((v) => (LABEL + v).toFixed(1));
          parts.push(`<line x1="${a}" x2="${b}" y1="${y + BAR / 2}" y2="${y + BAR / 2}" stroke="#212529" stroke-width="1"/>`);
        }
        parts.push(`<text x="${LABEL + w + 6}" y="${y + 12}">${escape(format(r.median))}</text>`);
      } else {
        parts.push(`<text x="${LABEL + 6}" y="${y + 12}" fill="#c92a2a">${escape(r.error ? 'failed' : format(r.median ?? 0))}</text>`);
      }
      y += BAR + GAP;
    });
    y += 10;
  }
  const height = y + 10;
  const title = `${metric.title}: ${metric.unit}, ${metric.lowerIsBetter ? 'lower' : 'higher'} is better${log ? ' (log scale)' : ''}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="8" y="22" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<line x1="${LABEL}" x2="${LABEL}" y1="40" y2="${height - 10}" stroke="#adb5bd"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
