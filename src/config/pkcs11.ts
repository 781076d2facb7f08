/**
 * `keyring.pkcs11` (DATA-1): key-encryption keys that stay in a PKCS#11 token (an HSM). The node
 * asks the token to wrap and unwrap data keys and never holds a KEK (src/crypto/pkcs11-kek.ts).
 */
import { z } from 'zod';
import { opt } from './option-meta.ts';

export const pkcs11Section = z
  .strictObject({
    module: opt(z.string().min(1).max(1024).optional(), {
      doc: 'Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`. Set: KEKs stay in the token (masterKeys, keyFile and kms.keys must be unset); the start logs in, checks every version with a wrap and unwrap in the token, and refuses to start when it cannot (KEK_UNAVAILABLE, KEK_ACCESS_DENIED, KEK_MISSING). Rotation: `gatehouse keys rotate kek` makes the next version in the token, rewraps every data key and retires the old version.',
    }),
    tokenLabel: opt(z.string().min(1).max(32).optional(), { doc: 'Label of the token holding the KEKs (required with module).' }),
    pin: opt(z.string().min(1).max(256).optional(), { doc: 'The token user PIN (required with module); best from a file: GATEHOUSE_KEYRING_PKCS11_PIN_FILE.', secret: true }),
    keyLabel: opt(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).default('gatehouse-kek'), {
      doc: 'Label prefix of the KEK objects in the token: version N is `<keyLabel>.v<N>`, an AES-256 key that is sensitive and not extractable, made in the token.',
    }),
  })
  .prefault({});
