/**
 * The mock AI vendor for benchmarks: the same server the gateway tests use (test/support/mock-vendor.ts,
 * where its routes and fault modes are documented), re-exported so benches import it from bench/.
 *
 *   node bench/mock-upstream.ts     # runs it alone and prints its URL (Ctrl-C stops it)
 */
export { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, MOCK_TEXT, startMockVendor } from '../test/support/mock-vendor.ts';
export type { MockVendor, MockVendorOptions, RecordedRequest } from '../test/support/mock-vendor.ts';
import { startMockVendor } from '../test/support/mock-vendor.ts';

if (import.meta.main) {
  const vendor = await startMockVendor({ openaiKey: process.env.MOCK_OPENAI_KEY, anthropicKey: process.env.MOCK_ANTHROPIC_KEY });
  process.stdout.write(`mock vendor on ${vendor.url} (keys checked only when MOCK_OPENAI_KEY / MOCK_ANTHROPIC_KEY are set)\n`);
  process.once('SIGINT', () => void vendor.close().then(() => process.exit(0)));
}
