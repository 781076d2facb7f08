/** Who is signed in: GET /v1/me through the cache; `null` when signed out (401). */
import { useQuery } from '@tanstack/react-query';
import { api, ApiError, unwrap } from './client.ts';

export const ME_KEY = ['me'] as const;

export type Me = Awaited<ReturnType<typeof fetchMe>>;

async function fetchMe() {
  try {
    return await unwrap(api.GET('/v1/me'));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export function useMe() {
  return useQuery({ queryKey: ME_KEY, queryFn: fetchMe });
}
