import { Link } from 'react-router';
import { Page } from '../../components/index.ts';

export default function NotFoundPage() {
  return (
    <Page title="Page not found">
      <p>
        There is no console page at this address. <Link to="/">Go to the console&apos;s start page</Link>.
      </p>
    </Page>
  );
}
