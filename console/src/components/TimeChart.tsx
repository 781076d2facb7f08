import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface TimeSeries {
  label: string;
  /** One value per point of `times`. */
  values: ReadonlyArray<number | null>;
  /** A CSS colour for the line. */
  stroke: string;
}

/**
 * A line chart over time drawn on a canvas by uPlot (its CSS is a file; it sizes its elements
 * through the CSSOM, which the console's CSP allows, and never uses eval or HTML strings). The
 * chart is an image to assistive technology (`label`); pages show the same numbers in a table.
 */
export function TimeChart({ label, times, series, height = 240 }: { label: string; times: readonly Date[]; series: readonly TimeSeries[]; height?: number }) {
  const target = useRef<HTMLDivElement>(null);
  // Redrawn when the numbers change, not on every render (the arrays are new each time).
  const signature = JSON.stringify([times, series, height]);
  const latest = useRef({ times, series, height });
  latest.current = { times, series, height };
  useEffect(() => {
    const { times, series, height } = latest.current;
    const el = target.current;
    if (!el) return undefined;
    const data: uPlot.AlignedData = [times.map((t) => t.getTime() / 1000), ...series.map((s) => [...s.values])];
    const chart = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, points: { show: true } }))],
        axes: [{}, { size: 60 }],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(280, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [signature]);
  return <div ref={target} className="chart" role="img" aria-label={label} />;
}
