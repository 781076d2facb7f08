/** Me: the signed-in account — profile, email, password, second factors, sessions and devices, export, deletion. */
import { Page, RequireSession } from '../../components/index.ts';
import { AccountSection } from './AccountSection.tsx';
import { DangerSection } from './DangerSection.tsx';
import { PasskeysSection } from './PasskeysSection.tsx';
import { PasswordSection } from './PasswordSection.tsx';
import { SessionsSection } from './SessionsSection.tsx';
import { TotpSection } from './TotpSection.tsx';

export default function MePage() {
  return (
    <RequireSession>
      {(me) => (
        <Page title="Your account">
          <AccountSection me={me} />
          <PasswordSection />
          <TotpSection me={me} />
          <PasskeysSection />
          <SessionsSection />
          <DangerSection />
        </Page>
      )}
    </RequireSession>
  );
}
