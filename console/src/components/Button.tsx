import type { ButtonHTMLAttributes } from 'react';

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  /** primary (the page's main action), secondary (default), danger (destroys something), link-like. */
  variant?: 'primary' | 'secondary' | 'danger' | 'quiet';
  /** While true the button is disabled and says so to assistive technology. */
  busy?: boolean;
}

/** A button of the kit; type="button" unless told otherwise, so it never submits a form by accident. */
export function Button({ variant = 'secondary', busy = false, type = 'button', className, disabled, children, ...rest }: ButtonProps) {
  const classes = ['btn', `btn-${variant}`, className].filter(Boolean).join(' ');
  return (
    <button {...rest} type={type} className={classes} disabled={disabled || busy} aria-busy={busy || undefined}>
      {children}
    </button>
  );
}
