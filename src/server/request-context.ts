/**
 * Who and where a request comes from, for code deep below a handler (the audit log) without
 * passing it through every function. Set by the server around each handler.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Principal } from './route.ts';

export interface RequestInfo {
  requestId: string;
  ip: string;
  userAgent: string | undefined;
  principal: Principal | undefined;
}

const storage = new AsyncLocalStorage<RequestInfo>();

/** Runs fn with `info` as the current request. */
export function runWithRequest<T>(info: RequestInfo, fn: () => T): T {
  return storage.run(info, fn);
}

/** The request being handled, or undefined outside one (CLI, timers). */
export function currentRequest(): RequestInfo | undefined {
  return storage.getStore();
}
