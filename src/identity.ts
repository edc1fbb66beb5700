/** Who is behind an SSH connection: defined with the access policy that produces it. */
export type { Identity } from './policy/identities.ts';
