/**
 * The first-run operator account: a one-time setup code printed at start while no operator exists.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { hashPassword } from './passwords.ts';
import { normalizeEmail, publicUser, type PublicUser, type AccountsCore } from './accounts-core.ts';

export function createSetup(core: AccountsCore) {
  const { deps, note, argon2, tokenTtlMs, acceptablePassword, userById, issueEmailToken, consumeEmailToken } = core;
  const { db, logger, now } = deps;

  /** First run: when no operator exists, a one-time setup token (printed by `start`). */
  async function ensureSetupToken(): Promise<string | null> {
    const ops = await db.query("select 1 from users where is_operator and status <> 'deleted' limit 1");
    if (ops.rowCount > 0) return null;
    await db.query("update email_tokens set used_at = $1 where purpose = 'setup' and used_at is null", [new Date(now())]);
    return issueEmailToken(null, 'setup', tokenTtlMs);
  }

  async function completeSetup(token: string, input: { email: string; password: string }): Promise<PublicUser> {
    const email = normalizeEmail(input.email);
    // The same rules as sign-up (length, blocklist with the printed placeholders, strength, breach check).
    await acceptablePassword(input.password, [email, email.split('@')[0] ?? '']);
    const ops = await db.query("select 1 from users where is_operator and status <> 'deleted' limit 1");
    if (ops.rowCount > 0) throw new AppError('TOKEN_INVALID');
    await consumeEmailToken(token, 'setup');
    const id = randomUUID();
    const t = new Date(now());
    await db.query('insert into users (id, email, password_hash, email_verified_at, is_operator) values ($1, $2, $3, $4, true)', [
      id,
      email,
      await hashPassword(input.password, argon2),
      t,
    ]);
    logger.info({ event: 'operator_created', userId: id }, 'first operator account created');
    await note('operator.setup.completed', id);
    const user = await userById(id);
    if (!user) throw new AppError('INTERNAL');
    return publicUser(user);
  }

  return { ensureSetupToken, completeSetup };
}
