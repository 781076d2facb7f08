import { LEAST_ROLE, type FormPermission } from '../api/roles.ts';

/**
 * Says why a form is shown read-only: the least role it needs and the member's role here (nothing
 * while the role is still loading). The API refuses the change anyway; this saves the round trip.
 */
export function RoleNote({ role, permission, action }: { role: string; permission: FormPermission; action: string }) {
  if (!role) return null;
  return (
    <p className="role-note">
      {action} needs the {LEAST_ROLE[permission]} role or higher; your role here is {role}.
    </p>
  );
}
