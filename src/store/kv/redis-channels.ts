/**
 * What the Redis kv's pub/sub keeps about its channels: the subscriptions wanted per channel, the
 * channels Redis confirmed on the subscriber connection, whether the subscriptions are live (see
 * Kv.subscriptionsLive), and the queue that runs SUBSCRIBE/UNSUBSCRIBE one at a time.
 */
import type { Redis } from 'ioredis';
import type { KvErrorReporter } from './args.ts';
import type { MessageHandler } from './types.ts';

export interface ChannelState {
  /** Prepended to every channel (the kv's key prefix). */
  readonly prefix: string;
  readonly report: KvErrorReporter;
  /** Prefixed channel -> its subscriptions. */
  readonly handlersByChannel: Map<string, Set<MessageHandler>>;
  /** Channels Redis has confirmed on the subscriber connection. */
  readonly confirmed: Set<string>;
  /** Whether the kv is closed. */
  isClosed(): boolean;
  /** Whether every wanted channel is confirmed on a connected subscriber. */
  isLive(): boolean;
  /** Sets the live state and tells the listeners when it changes. */
  setLive(next: boolean): void;
  /** Calls `listener` on every change of the live state; returns its removal. */
  onLive(listener: (live: boolean) => void): () => void;
  /** Live only when the subscriber is connected and Redis confirmed every channel someone wants. */
  updateLive(sub: Redis | undefined): void;
  /** Runs `operation` after every one queued before it, so Redis stays in step with handlersByChannel. */
  serialized(operation: () => Promise<void>): Promise<void>;
  /** Not live any more, with no listener and no subscription left (on close). */
  clear(): void;
}

export function createChannelState(prefix: string, report: KvErrorReporter, isClosed: () => boolean): ChannelState {
  const handlersByChannel = new Map<string, Set<MessageHandler>>();
  const confirmed = new Set<string>();
  // SUBSCRIBE/UNSUBSCRIBE run one at a time so interleaved calls cannot leave Redis out of
  // step with handlersByChannel.
  let subscriptionChain: Promise<void> = Promise.resolve();
  let live = false;
  const liveListeners = new Set<(live: boolean) => void>();

  const setLive = (next: boolean): void => {
    if (next === live) return;
    live = next;
    for (const listener of [...liveListeners]) {
      try {
        listener(next);
      } catch (error) {
        report(error, 'subscription state listener');
      }
    }
  };

  return {
    prefix,
    report,
    handlersByChannel,
    confirmed,
    isClosed,
    isLive: () => live,
    setLive,

    onLive(listener) {
      liveListeners.add(listener);
      return () => void liveListeners.delete(listener);
    },

    updateLive(sub) {
      const ready = !isClosed() && sub !== undefined && sub.status === 'ready';
      setLive(ready && handlersByChannel.size > 0 && [...handlersByChannel.keys()].every((c) => confirmed.has(c)));
    },

    serialized(operation) {
      const run = subscriptionChain.then(operation);
      subscriptionChain = run.catch(() => undefined);
      return run;
    },

    clear() {
      live = false;
      liveListeners.clear();
      handlersByChannel.clear();
    },
  };
}
