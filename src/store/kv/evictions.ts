/**
 * Publishing cache evictions that must arrive. A node caches what it read from the database and
 * drops it when another node announces a change over kv pub/sub. Two things can lose that
 * announcement, and each has its own answer:
 *   - the receiving node's subscription is down (Redis down or restarting, a dropped connection):
 *     that node does not trust its cache meanwhile and empties it when the subscription is live
 *     again (Kv.subscriptionsLive / onSubscriptionsLive, used by each cache's owner);
 *   - the publishing node cannot reach Redis while the others can: the change is committed, so
 *     the request succeeds, and the announcement is published again every `retryMs` until Redis
 *     takes it or `giveUpAfterMs` has passed (by then every entry cached before the change has
 *     expired anyway). Other nodes' entries therefore stay stale at most until this node reaches
 *     Redis again, and never longer than the cache lifetime.
 */
import type { Logger } from 'pino';
import type { Kv } from './types.ts';

export interface EvictionPublisher {
  /**
   * Publishes `message` on `channel`. Never throws: a failure is logged and the message is
   * published again in the background until it is delivered or too old to matter.
   */
  publish(channel: string, message: string): Promise<void>;
  /** Messages waiting for another attempt. */
  readonly pending: number;
  /** Stops retrying (pending messages are dropped; the cache lifetime bounds them). */
  close(): void;
}

interface Pending {
  channel: string;
  message: string;
  since: number;
}

/** More than this many waiting messages: the oldest are dropped (each still bounded by the cache lifetime). */
const MAX_PENDING = 10_000;

/**
 * @example const evictions = createEvictionPublisher({ kv, logger, now, giveUpAfterMs: 60_000 }); await evictions.publish('gateway:evict', `key:${id}`)
 */
export function createEvictionPublisher(deps: { kv: Kv; logger: Logger; now: () => number; giveUpAfterMs: number; retryMs?: number }): EvictionPublisher {
  const { kv, logger, now, giveUpAfterMs } = deps;
  const retryMs = deps.retryMs ?? 1_000;
  // Keyed by channel and message: the same eviction waiting twice is one retry.
  const queue = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function enqueue(item: Pending): void {
    queue.set(`${item.channel}\n${item.message}`, item);
    if (queue.size > MAX_PENDING) {
      const oldest = queue.keys().next();
      if (!oldest.done) queue.delete(oldest.value);
    }
    timer ??= setInterval(() => void retry(), retryMs).unref();
  }

  async function retry(): Promise<void> {
    for (const [id, item] of queue) {
      if (closed) return;
      if (now() - item.since >= giveUpAfterMs) {
        queue.delete(id);
        continue;
      }
      try {
        await kv.publish(item.channel, item.message);
        queue.delete(id);
      } catch {
        // Still unreachable: the next tick tries again, in the same order.
        return;
      }
    }
    if (queue.size === 0) {
      clearInterval(timer);
      timer = undefined;
      logger.info('cache evictions published after a kv outage');
    }
  }

  return {
    async publish(channel, message) {
      try {
        await kv.publish(channel, message);
      } catch (err) {
        logger.error({ err, channel }, 'could not publish a cache eviction; retrying until the kv takes it');
        if (!closed) enqueue({ channel, message, since: now() });
      }
    },
    get pending() {
      return queue.size;
    },
    close() {
      closed = true;
      clearInterval(timer);
      timer = undefined;
      queue.clear();
    },
  };
}
