/** The memory kv's pub/sub: in-process channels, delivered on a later tick as a broker would. */
import type { KvErrorReporter } from './args.ts';
import type { MemoryState } from './memory-state.ts';
import type { Kv, MessageHandler } from './types.ts';

export type PubSubOps = Pick<Kv, 'publish' | 'subscribe' | 'subscriptionsLive' | 'onSubscriptionsLive'> & {
  /** Drops every subscription; deliveries already scheduled by publish() find no handler. */
  clear(): void;
};

/** Pub/sub over one memory state; a throwing handler is reported to `onError` and delivery goes on. */
export function createMemoryPubSub(state: MemoryState, onError: KvErrorReporter): PubSubOps {
  const channels = new Map<string, Set<MessageHandler>>();
  return {
    async publish(channel, message) {
      state.ensureOpen();
      const handlers = channels.get(channel);
      if (handlers === undefined || handlers.size === 0) return;
      const targets = [...handlers];
      // Deliver later, like a broker would, so publishers never run subscriber code inline.
      setImmediate(() => {
        for (const handler of targets) {
          // A handler removed after the publish but before delivery no longer wants messages.
          if (!handlers.has(handler)) continue;
          try {
            handler(message);
          } catch (error) {
            onError(error, `subscriber handler on ${channel}`);
          }
        }
      });
    },

    async subscribe(channel, handler) {
      state.ensureOpen();
      let handlers = channels.get(channel);
      if (handlers === undefined) {
        handlers = new Set();
        channels.set(channel, handlers);
      }
      // Wrapping gives each subscription its own identity, so the same function subscribed
      // twice is delivered twice and unsubscribing one leaves the other.
      const subscription: MessageHandler = (message) => handler(message);
      handlers.add(subscription);
      const own = handlers;
      return async () => {
        own.delete(subscription);
        if (own.size === 0 && channels.get(channel) === own) channels.delete(channel);
      };
    },

    // One process: a published message always reaches its subscribers, so the state never changes.
    subscriptionsLive() {
      return !state.isClosed();
    },

    onSubscriptionsLive() {
      return () => undefined;
    },

    clear() {
      // Emptying the sets also cancels deliveries already scheduled by publish().
      for (const handlers of channels.values()) handlers.clear();
      channels.clear();
    },
  };
}
