import type { ReactNode } from 'react';
import { Button } from './Button.tsx';
import { Dialog } from './Dialog.tsx';
import { ApiErrorNotice } from './Notice.tsx';

export interface ConfirmDialogProps {
  open: boolean;
  title: ReactNode;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  /** Destructive actions get the danger style. */
  danger?: boolean;
  busy?: boolean;
  /** The refusal of the last attempt, shown inside the dialog. */
  error?: unknown;
}

/** Asks before an action that cannot be undone; Cancel is focused first. */
export function ConfirmDialog({ open, title, children, confirmLabel, onConfirm, onCancel, danger = false, busy = false, error }: ConfirmDialogProps) {
  return (
    <Dialog
      open={open}
      title={title}
      onClose={onCancel}
      actions={
        <>
          <Button onClick={onCancel} autoFocus>
            Cancel
          </Button>
          <Button variant={danger ? 'danger' : 'primary'} onClick={onConfirm} busy={busy}>
            {confirmLabel}
          </Button>
        </>
      }
    >
      {children}
      <ApiErrorNotice error={error} />
    </Dialog>
  );
}
