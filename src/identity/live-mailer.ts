/**
 * The configured mail transport, following reloads (OPS-3): each message is sent through the
 * transport built from the running `mail.smtpUrl` and `mail.from`. A reload that changes them
 * builds a new transport for the next message; a message already being sent finishes on the old
 * one, which is closed once its last send ends. A reload whose SMTP URL or sender cannot be used
 * is refused before anything changes (the check runs `createMailer`, which parses both).
 */
import type { Logger } from 'pino';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import { createMailer, type MailMessage, type Mailer } from './mailer.ts';

interface Slot {
  mailer: Mailer;
  smtpUrl: string | undefined;
  from: string;
  sending: number;
  retired: boolean;
}

export function createLiveMailer(deps: { live: LiveConfig; outboxDir: (config: Config) => string; logger: Logger; now: () => number }): Mailer {
  const { live, logger, now } = deps;
  const build = (config: Config): Slot => ({
    mailer: createMailer({ ...(config.mail.smtpUrl ? { smtpUrl: config.mail.smtpUrl } : {}), from: config.mail.from, outboxDir: deps.outboxDir(config), logger, now }),
    smtpUrl: config.mail.smtpUrl,
    from: config.mail.from,
    sending: 0,
    retired: false,
  });
  let slot = build(live.current());
  const retire = (old: Slot): void => {
    old.retired = true;
    if (old.sending === 0) void old.mailer.close().catch(() => undefined);
  };
  const unsubscribe = live.subscribe({
    // Parses the new URL and sender without connecting; a TypeError names what is wrong, never the URL.
    check: (next) => {
      if (next.mail.smtpUrl === slot.smtpUrl && next.mail.from === slot.from) return;
      void build(next).mailer.close();
    },
    apply: (next) => {
      if (next.mail.smtpUrl === slot.smtpUrl && next.mail.from === slot.from) return;
      const old = slot;
      slot = build(next);
      retire(old);
    },
  });
  return {
    get transport() {
      return slot.mailer.transport;
    },
    async send(message: MailMessage): Promise<void> {
      const used = slot;
      used.sending++;
      try {
        await used.mailer.send(message);
      } finally {
        used.sending--;
        if (used.retired && used.sending === 0) void used.mailer.close().catch(() => undefined);
      }
    },
    async close(): Promise<void> {
      unsubscribe();
      await slot.mailer.close();
    },
  };
}
