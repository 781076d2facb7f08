import type { ReactNode } from 'react';
import { ApiError } from '../api/client.ts';

export interface NoticeProps {
  tone?: 'info' | 'success' | 'warning' | 'error';
  title?: ReactNode;
  children?: ReactNode;
}

/** A message box; warnings and errors are announced at once (role="alert"), the rest politely. */
export function Notice({ tone = 'info', title, children }: NoticeProps) {
  const urgent = tone === 'error' || tone === 'warning';
  return (
    <div className={`notice notice-${tone}`} role={urgent ? 'alert' : 'status'}>
      {title ? <p className="notice-title">{title}</p> : null}
      {children}
    </div>
  );
}

/**
 * Shows a refusal of the API with its Gatehouse error code, message and request id (what an
 * operator needs to find it in the logs); any other error by its message.
 */
export function ApiErrorNotice({ error, title = 'The request was refused' }: { error: unknown; title?: ReactNode }) {
  if (error === null || error === undefined) return null;
  if (error instanceof ApiError) {
    return (
      <Notice tone="error" title={title}>
        <p>
          <code className="error-code">{error.code}</code> {error.message}
        </p>
        {error.requestId ? <p className="muted">Request id: <code>{error.requestId}</code></p> : null}
      </Notice>
    );
  }
  return (
    <Notice tone="error" title={title}>
      <p>{error instanceof Error ? error.message : String(error)}</p>
    </Notice>
  );
}
