/** UTC months of the gateway: the monthly key limit's period and the usage report's. */

/** The first instant of a `YYYY-MM` month and of the next one, UTC. */
export function monthBounds(month: string): { from: Date; to: Date } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return { from: new Date(Date.UTC(y, m - 1, 1)), to: new Date(Date.UTC(y, m, 1)) };
}

/** `YYYY-MM` of an instant, UTC. */
export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

// The month of the last instant asked about and its bounds: on the request path a new month
// begins once a month, so the string is built once a month rather than once a call.
let cachedMonth = { month: '', start: 0, end: 0 };

/**
 * `YYYY-MM` of an instant and the instant the month ends (ms), UTC, cached.
 * @example monthAt(Date.now()) // { month: '2026-12', end: 1798761600000 }
 */
export function monthAt(ms: number): { month: string; end: number } {
  if (ms < cachedMonth.start || ms >= cachedMonth.end) {
    const month = monthOf(ms);
    const { from, to } = monthBounds(month);
    cachedMonth = { month, start: from.getTime(), end: to.getTime() };
  }
  return cachedMonth;
}
