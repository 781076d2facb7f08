import type { GuardFn } from './types.ts';

/** Anyone may call the route; rate limits by IP still apply. */
export const publicGuard: GuardFn = async () => undefined;
