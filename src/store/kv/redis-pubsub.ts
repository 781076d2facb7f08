/**
 * The Redis kv's pub/sub: publish on the command connection, subscriptions on the subscriber
 * connection (redis-subscriber.ts), kept in step with what handlers want (redis-channels.ts).
 */
import type { Redis } from 'ioredis';
import type { KvErrorReporter } from './args.ts';
import { createChannelState } from './redis-channels.ts';
import { CONNECTION_CONTEXT, type RedisCall } from './redis-connection.ts';
import { createSubscriberConnection } from './redis-subscriber.ts';
import type { Kv, MessageHandler } from './types.ts';

export type RedisPubSub = Pick<Kv, 'publish' | 'subscribe' | 'subscriptionsLive' | 'onSubscriptionsLive'> & {
  /** Stops delivering and forgets every subscription; returns the subscriber connection to quit, if one was opened. */
  detach(): Promise<Redis | undefined>;
};

export interface RedisPubSubDeps {
  client: Redis;
  prefix: string;
  report: KvErrorReporter;
  call: RedisCall;
  ensureOpen: () => void;
  isClosed: () => boolean;
}

export function createRedisPubSub({ client, prefix, report, call, ensureOpen, isClosed }: RedisPubSubDeps): RedisPubSub {
  const channels = createChannelState(prefix, report, isClosed);
  const { handlersByChannel, confirmed } = channels;
  const subscriber = createSubscriberConnection(client, channels);

  // Brings Redis in line with whether anyone still wants `channel`.
  async function reconcile(channel: string): Promise<void> {
    const wanted = (handlersByChannel.get(channel)?.size ?? 0) > 0;
    if (wanted && !confirmed.has(channel)) {
      const sub = await subscriber.open();
      await sub.subscribe(channel);
      confirmed.add(channel);
      channels.updateLive(sub);
    } else if (!wanted && confirmed.has(channel)) {
      confirmed.delete(channel);
      const sub = await subscriber.current();
      await sub?.unsubscribe(channel);
    }
  }

  function removeHandler(channel: string, handlers: Set<MessageHandler>, handler: MessageHandler): void {
    handlers.delete(handler);
    if (handlers.size === 0 && handlersByChannel.get(channel) === handlers) handlersByChannel.delete(channel);
  }

  return {
    async publish(channel, message) {
      await call('publish', () => client.publish(prefix + channel, message));
    },

    async subscribe(channel, handler) {
      ensureOpen();
      const full = prefix + channel;
      // Each subscription gets its own identity, so one function subscribed twice is two subscriptions.
      const subscription: MessageHandler = (message) => handler(message);
      let handlers = handlersByChannel.get(full);
      if (handlers === undefined) {
        handlers = new Set();
        handlersByChannel.set(full, handlers);
      }
      handlers.add(subscription);
      const own = handlers;
      try {
        await call('subscribe', () => channels.serialized(() => reconcile(full)));
      } catch (error) {
        removeHandler(full, own, subscription);
        throw error;
      }
      let active = true;
      return async () => {
        if (!active) return;
        active = false;
        // Delivery stops here, whatever happens to the UNSUBSCRIBE below.
        removeHandler(full, own, subscription);
        if (isClosed()) return;
        try {
          await channels.serialized(() => reconcile(full));
        } catch (error) {
          // Only a stale server-side subscription is left; its messages find no handler.
          report(error, CONNECTION_CONTEXT);
        }
      };
    },

    subscriptionsLive() {
      return channels.isLive() && !isClosed();
    },

    onSubscriptionsLive(listener) {
      return channels.onLive(listener);
    },

    async detach() {
      subscriber.stopRetry();
      channels.clear();
      return subscriber.current()?.catch(() => undefined);
    },
  };
}
