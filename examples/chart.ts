/**
 * A minimal SVG line chart (panels side by side, one polyline per series, a legend), shared by the
 * Node example (written to a file) and the browser demo (redrawn live). Hand-written rather than a
 * charting library because the examples need a few lines and polylines, not a DOM or a canvas.
 */

/** One line of a panel: its legend name, its colour and its (x, y) points. */
export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
  /** Dashed, so that a series lying on top of another one does not hide it. */
  dashed?: boolean;
}

/** One chart panel: axes with labels and the series drawn on them. */
export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Where the x axis starts; by default at the smallest x. */
  xMin?: number;
  /** Fixed y range; by default it spans the finite data. Points outside are drawn at the edge. */
  yMin?: number;
  yMax?: number;
}

const PANEL_WIDTH = 460;
const PANEL_HEIGHT = 320;
const MARGIN = {left: 56, right: 16, top: 34, bottom: 70};

/** Escapes the characters that would end an SVG text node or attribute. */
function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, c => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;'}[c] as string));
}

/** About five round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const span = hi - lo || 1;
  const magnitude = 10 ** Math.floor(Math.log10(span / 5));
  const step = [1, 2, 5, 10].map(m => m * magnitude).find(s => span / s <= 6) as number;
  const values: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) values.push(Number(v.toPrecision(12)));
  return values;
}

/** The [min, max] of the finite values, or [0, 1] when there are none. */
function finiteRange(values: number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  const [lo, hi] = [Math.min(...finite), Math.max(...finite)];
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

function renderPanel(panel: Panel, offsetX: number): string {
  const points = panel.series.flatMap(s => s.points);
  const [dataXLo, xHi] = finiteRange(points.map(p => p[0]));
  const xLo = panel.xMin ?? dataXLo;
  const [dataLo, dataHi] = finiteRange(points.map(p => p[1]));
  const yLo = panel.yMin ?? dataLo;
  const yHi = panel.yMax ?? dataHi;
  const plotW = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => offsetX + MARGIN.left + ((x - xLo) / (xHi - xLo)) * plotW;
  const sy = (y: number) => MARGIN.top + (1 - (Math.min(Math.max(y, yLo), yHi) - yLo) / (yHi - yLo)) * plotH;
  const fmt = (v: number) => Number(v.toPrecision(4)).toString();
  const parts: string[] = [];

  parts.push(`<text x="${offsetX + PANEL_WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`);
  for (const y of ticks(yLo, yHi)) {
    parts.push(`<line x1="${sx(xLo)}" x2="${sx(xHi)}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${sx(xLo) - 6}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  for (const x of ticks(xLo, xHi)) {
    parts.push(`<text x="${sx(x)}" y="${sy(yLo) + 16}" text-anchor="middle">${fmt(x)}</text>`);
  }
  parts.push(`<rect x="${sx(xLo)}" y="${sy(yHi)}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${sx((xLo + xHi) / 2)}" y="${sy(yLo) + 34}" text-anchor="middle">${escapeXml(panel.xLabel)}</text>`);
  const yLabelX = offsetX + 14;
  const yLabelY = MARGIN.top + plotH / 2;
  parts.push(`<text x="${yLabelX}" y="${yLabelY}" text-anchor="middle" transform="rotate(-90 ${yLabelX} ${yLabelY})">${escapeXml(panel.yLabel)}</text>`);

  panel.series.forEach((series, i) => {
    // A non-finite value (a diverged run's NaN loss) breaks the line instead of corrupting the path.
    const runs: string[][] = [[]];
    for (const [x, y] of series.points) {
      if (Number.isFinite(x) && Number.isFinite(y)) runs[runs.length - 1].push(`${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      else if (runs[runs.length - 1].length > 0) runs.push([]);
    }
    const dash = series.dashed ? ' stroke-dasharray="5 3"' : '';
    for (const run of runs.filter(r => r.length > 0)) {
      parts.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${series.color}" stroke-width="1.8"${dash}/>`);
    }
    const legendX = offsetX + MARGIN.left + (i % 2) * (plotW / 2);
    const legendY = PANEL_HEIGHT - 22 + Math.floor(i / 2) * 16;
    parts.push(`<line x1="${legendX}" x2="${legendX + 18}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${series.color}" stroke-width="3"${dash}/>`);
    parts.push(`<text x="${legendX + 24}" y="${legendY}">${escapeXml(series.name)}</text>`);
  });
  return parts.join('\n');
}

/** An SVG document with the panels side by side. */
export function lineChartSvg(panels: Panel[]): string {
  const width = PANEL_WIDTH * panels.length;
  const body = panels.map((panel, i) => renderPanel(panel, i * PANEL_WIDTH)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL_HEIGHT}" viewBox="0 0 ${width} ${PANEL_HEIGHT}" ` +
    `font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}
