/** The console's component kit: import from here. Add components; do not rename or remove. */
export { Button, type ButtonProps } from './Button.tsx';
export { ConfirmDialog, type ConfirmDialogProps } from './ConfirmDialog.tsx';
export { CopyButton } from './CopyButton.tsx';
export { Dialog, type DialogProps } from './Dialog.tsx';
export { Field, SelectField, type FieldProps, type SelectFieldProps } from './Field.tsx';
export { ApiErrorNotice, Notice, type NoticeProps } from './Notice.tsx';
export { Page, Section } from './Page.tsx';
export { Table, useCursorPages, type Column, type Pagination, type TableProps } from './Table.tsx';
export { RequireSession } from './RequireSession.tsx';
export { ScopePicker } from './ScopePicker.tsx';
export { useStepUp } from './StepUp.tsx';
export { RoleNote } from './RoleNote.tsx';
