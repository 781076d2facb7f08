/** A mutation of the API that refreshes the cached lists it changes. */
import { useMutation, useQueryClient, type QueryKey } from '@tanstack/react-query';

/**
 * @example const create = useAction((name: string) => unwrap(api.POST(...)), [['orgs']]);
 *          create.mutate('Acme'); <ApiErrorNotice error={create.error} />
 */
export function useAction<A, R>(run: (arg: A) => Promise<R>, invalidate: readonly QueryKey[], onDone?: (result: R) => void) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: run,
    onSuccess: async (result) => {
      await Promise.all(invalidate.map((queryKey) => queryClient.invalidateQueries({ queryKey })));
      onDone?.(result);
    },
  });
}
