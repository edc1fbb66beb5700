/**
 * SSH_MSG_CHANNEL_OPEN_FAILURE with a description the user can read. ssh2's `reject()` for a
 * channel open always sends an empty description (and picks the reason code itself), so the
 * user would see only "open failed: connect failed". Its reject calls the connection's
 * `_protocol.channelOpenFail(recipient, reason, desc)` synchronously; we wrap that method once
 * per connection and fill in the code and text of the rejection in progress. Kept in this one
 * file so that an ssh2 patch that takes a description can replace it.
 */
import type { Connection } from 'ssh2';

/** RFC 4254 section 5.1 reason codes; OpenSSH prints them as "administratively prohibited",
 *  "connect failed", "unknown channel type", "resource shortage". */
export const OpenFailure = {
  administrativelyProhibited: 1,
  connectFailed: 2,
  unknownChannelType: 3,
  resourceShortage: 4,
} as const;

export type OpenFailureCode = (typeof OpenFailure)[keyof typeof OpenFailure];

interface ProtocolLike {
  channelOpenFail(recipient: number, reason: number, desc?: string): void;
}

const installed = new WeakSet<object>();
let pending: { code: OpenFailureCode; text: string } | null = null;

function install(client: Connection): boolean {
  const proto = (client as unknown as { _protocol?: ProtocolLike })._protocol;
  if (proto === undefined || typeof proto.channelOpenFail !== 'function') return false;
  if (installed.has(proto)) return true;
  const original = proto.channelOpenFail.bind(proto);
  proto.channelOpenFail = (recipient: number, reason: number, desc?: string) => {
    const mine = pending;
    pending = null;
    if (mine === null) return original(recipient, reason, desc);
    return original(recipient, mine.code, mine.text);
  };
  installed.add(proto);
  return true;
}

/** Calls ssh2's `reject` so that the client receives `code` and `text`. The description is
 *  one line of printable ASCII (OpenSSH prints it raw on the user's terminal). */
export function rejectWithReason(client: Connection, reject: () => void, code: OpenFailureCode, text: string): void {
  if (install(client)) pending = { code, text: text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500) };
  try {
    reject();
  } finally {
    pending = null;
  }
}
