/**
 * SSH_MSG_CHANNEL_OPEN_FAILURE with a description the user can read (OpenSSH prints it after
 * "open failed: connect failed: "). ssh2 1.17's `reject()` always sent an empty description;
 * our patch 007 (patches/, docs/ssh2-patches.md) lets it take the reason code and the text.
 */

/** RFC 4254 section 5.1 reason codes; OpenSSH prints them as "administratively prohibited",
 *  "connect failed", "unknown channel type", "resource shortage". */
export const OpenFailure = {
  administrativelyProhibited: 1,
  connectFailed: 2,
  unknownChannelType: 3,
  resourceShortage: 4,
} as const;

export type OpenFailureCode = (typeof OpenFailure)[keyof typeof OpenFailure];

/** ssh2's channel `reject` as patch 007 makes it. @types/ssh2 types it `() => void`, which is
 *  assignable to this, so a listener can declare its `reject` parameter as ChannelReject and call
 *  `reject(code, text)` without a cast. */
export type ChannelReject = (reason?: OpenFailureCode, description?: string) => void;

/** Refuses a channel open so that the client receives `code` and `text`. The description is one
 *  line of printable ASCII (OpenSSH prints it raw on the user's terminal). */
export function refuseChannel(reject: ChannelReject, code: OpenFailureCode, text: string): void {
  reject(code, text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500));
}
