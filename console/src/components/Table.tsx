import { useCallback, useState, type ReactNode } from 'react';
import { Button } from './Button.tsx';

export interface Column<T> {
  /** The column's header text. */
  header: string;
  /** What a cell shows. */
  cell: (row: T) => ReactNode;
  /** A class for the column's cells (e.g. "num" right-aligns). */
  className?: string;
}

export interface Pagination {
  /** "Page 2", "Events 101–200"... */
  label?: string;
  onPrevious?: (() => void) | undefined;
  onNext?: (() => void) | undefined;
}

export interface TableProps<T> {
  caption: string;
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T) => string;
  /** Shown in place of the rows when there are none. */
  empty?: ReactNode;
  pagination?: Pagination;
}

/**
 * A data table with a caption and, when given, previous/next paging driven by the API's own
 * cursors (see useCursorPages). On a phone the table scrolls sideways inside its frame.
 */
export function Table<T>({ caption, columns, rows, rowKey, empty = 'Nothing here yet.', pagination }: TableProps<T>) {
  return (
    <div className="table-frame">
      <table className="table">
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.header} scope="col" className={c.className}>
                {c.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="table-empty">
                {empty}
              </td>
            </tr>
          ) : (
            rows.map((row) => (
              <tr key={rowKey(row)}>
                {columns.map((c) => (
                  <td key={c.header} className={c.className}>
                    {c.cell(row)}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
      {pagination && (pagination.onPrevious || pagination.onNext) ? (
        <nav className="pager" aria-label={`${caption}: pages`}>
          <Button onClick={pagination.onPrevious} disabled={!pagination.onPrevious}>
            Previous
          </Button>
          {pagination.label ? <span className="pager-label">{pagination.label}</span> : null}
          <Button onClick={pagination.onNext} disabled={!pagination.onNext}>
            Next
          </Button>
        </nav>
      ) : null}
    </div>
  );
}

/**
 * Cursor paging over an API list that answers `nextCursor` (null on the last page): the cursor of
 * the current page, and previous/next handlers for Table's `pagination`.
 * @example const pages = useCursorPages<number>(); useQuery({ queryKey: ['events', pages.cursor], ... });
 *          <Table pagination={pages.pagination(data?.nextCursor ?? null)} ... />
 */
export function useCursorPages<C>() {
  const [stack, setStack] = useState<C[]>([]);
  const cursor: C | undefined = stack[stack.length - 1];
  const reset = useCallback(() => setStack([]), []);
  const pagination = (nextCursor: C | null | undefined): Pagination => ({
    label: `Page ${stack.length + 1}`,
    onPrevious: stack.length > 0 ? () => setStack((s) => s.slice(0, -1)) : undefined,
    onNext: nextCursor !== null && nextCursor !== undefined ? () => setStack((s) => [...s, nextCursor]) : undefined,
  });
  return { cursor, page: stack.length + 1, reset, pagination };
}
