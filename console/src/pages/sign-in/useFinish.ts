/** After a successful sign-in: refresh who is signed in, then go to `next` (see api/next.ts). */
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router';
import { ME_KEY } from '../../api/session.ts';
import { nextTarget } from '../../api/next.ts';

export function useFinish(next: string | null | undefined): () => Promise<void> {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  return async () => {
    await queryClient.invalidateQueries({ queryKey: ME_KEY });
    const target = nextTarget(next);
    if ('internal' in target) await navigate(target.internal, { replace: true });
    else window.location.assign(target.external);
  };
}
