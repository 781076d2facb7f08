import { useEffect, useId, useRef, type ReactNode } from 'react';

let firstPage = true;

/**
 * A page of the console: sets the document title and, after a client-side navigation, moves focus
 * to the page's heading so a screen reader announces where the user is (not on the first load,
 * where focus stays at the top of the document).
 */
export function Page({ title, intro, children }: { title: string; intro?: ReactNode; children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Gatehouse console`;
    if (firstPage) {
      firstPage = false;
      // The first screen is usable: the browser tests read this mark (time to usable, recorded).
      performance.mark('gatehouse-console-usable');
    } else heading.current?.focus();
  }, [title]);
  return (
    <article className="page">
      <h1 ref={heading} tabIndex={-1} className="page-title">
        {title}
      </h1>
      {intro ? <p className="page-intro">{intro}</p> : null}
      {children}
    </article>
  );
}

/** A titled section of a page. */
export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  const id = useId();
  return (
    <section className="section" aria-labelledby={id}>
      <div className="section-head">
        <h2 id={id}>{title}</h2>
        {actions ? <div className="section-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}
