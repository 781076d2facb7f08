/**
 * The Redis kv's subscriber connection: a second connection (one in subscribe mode cannot run
 * other commands), opened on first use, that delivers messages to the handlers and subscribes
 * again after every reconnect.
 */
import type { Redis } from 'ioredis';
import type { ChannelState } from './redis-channels.ts';
import { CONNECT_TIMEOUT_MS, CONNECTION_CONTEXT, withTimeout } from './redis-connection.ts';

export interface SubscriberConnection {
  /** The subscriber connection, opened on first use; a failed attempt is forgotten so the next call tries again. */
  open(): Promise<Redis>;
  /** The connection opened or being opened, if any. */
  current(): Promise<Redis> | undefined;
  /** Cancels a pending retry of the resubscription. */
  stopRetry(): void;
}

export function createSubscriberConnection(client: Redis, channels: ChannelState): SubscriberConnection {
  const { handlersByChannel, confirmed, report } = channels;
  let subscriberPromise: Promise<Redis> | undefined;
  let resubscribeRetry: NodeJS.Timeout | undefined;

  function deliver(channel: string, message: string): void {
    const handlers = handlersByChannel.get(channel);
    if (handlers === undefined) return;
    for (const handler of [...handlers]) {
      try {
        handler(message);
      } catch (error) {
        report(error, `subscriber handler on ${channel.slice(channels.prefix.length)}`);
      }
    }
  }

  // After a reconnect the new connection holds no subscription: subscribe again, and only once
  // Redis has confirmed them all are the subscriptions live again.
  async function resubscribe(sub: Redis): Promise<void> {
    clearTimeout(resubscribeRetry);
    try {
      for (const channel of handlersByChannel.keys()) {
        if (confirmed.has(channel)) continue;
        await sub.subscribe(channel);
        confirmed.add(channel);
      }
    } catch (error) {
      report(error, CONNECTION_CONTEXT);
      // Still connected but refused or timed out: try again; a new connection triggers its own try.
      if (!channels.isClosed() && sub.status === 'ready') {
        resubscribeRetry = setTimeout(() => void channels.serialized(() => resubscribe(sub)).catch(() => undefined), 1_000).unref();
      }
    }
    channels.updateLive(sub);
  }

  function open(): Promise<Redis> {
    subscriberPromise ??= (async () => {
      // Its subscriptions are restored by resubscribe(), which knows when Redis confirmed them
      // (ioredis's own auto-resubscribe does not say).
      const sub = client.duplicate({ autoResubscribe: false });
      sub.on('error', (error: unknown) => report(error, CONNECTION_CONTEXT));
      sub.on('message', deliver);
      // Messages published while the connection is down are lost: not live until resubscribed.
      sub.on('close', () => {
        confirmed.clear();
        channels.setLive(false);
      });
      sub.on('ready', () => {
        if (!channels.isClosed()) void channels.serialized(() => resubscribe(sub)).catch(() => undefined);
      });
      try {
        await withTimeout(sub.connect(), CONNECT_TIMEOUT_MS + 500, 'subscriber connection timed out');
      } catch (error) {
        sub.disconnect();
        throw error;
      }
      return sub;
    })();
    // A failed attempt is forgotten so the next subscribe tries again.
    subscriberPromise.catch(() => {
      subscriberPromise = undefined;
    });
    return subscriberPromise;
  }

  return {
    open,
    current: () => subscriberPromise,
    stopRetry: () => clearTimeout(resubscribeRetry),
  };
}
