/**
 * Identifiers the proxy mints: Via branches (RFC 3261 §8.1.1.7, §16.6 step 8) and To tags of
 * responses it generates itself (§8.2.6.2).
 *
 * A branch is derived from the server transaction key by a keyed hash instead of being random,
 * so the same incoming request always maps to the same outgoing branch: a statelessly forwarded
 * ACK for a 2xx keeps its branch across retransmissions (§16.11), and a request retransmitted
 * after its transaction ended is forwarded with the branch the next hop already knows, so that
 * hop's own transaction absorbs it.
 */
import { randomBytes } from 'node:crypto';
import { BRANCH_COOKIE } from './via';

/** Every branch this proxy puts in its Via starts with this. */
export const OUR_BRANCH_PREFIX = `${BRANCH_COOKIE}tg`;

const SEEDS = randomBytes(8);
const SEED1 = SEEDS.readUInt32LE(0);
const SEED2 = SEEDS.readUInt32LE(4);

/**
 * 64-bit keyed hash of a transaction key (two 32-bit multiply-xorshift lanes with secret seeds,
 * each ending in murmur3's fmix32), as 16 hex digits after OUR_BRANCH_PREFIX.
 *
 * Hand-written instead of node:crypto (sha1 was ~1.3 µs a branch, three branches a call, ~2 % of
 * the proxy's CPU per call): a branch only has to be unique among the transactions in flight and
 * stable for one key (RFC 3261 §8.1.1.7, §16.11), not cryptographically strong. 64 bits make an
 * accidental collision among a million live transactions ~1e-8 likely; the seeds are secret, so
 * a sender cannot aim its keys at another sender's unseen branch, and colliding its own keys
 * gains it nothing it could not get by reusing its own branch.
 */
function hash64Branch(s: string): string {
  let h1 = SEED1 ^ s.length;
  let h2 = SEED2 ^ Math.imul(s.length, 0x9e3779b1);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x85ebca6b);
    h1 ^= h1 >>> 15;
    h2 = Math.imul(h2 ^ c, 0xc2b2ae35);
    h2 ^= h2 >>> 13;
  }
  h1 ^= Math.imul(h2, 0x27d4eb2f);
  h2 ^= Math.imul(h1, 0x165667b1);
  return branchText(fmix32(h1), fmix32(h2));
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const HEX = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));
const P = [...OUR_BRANCH_PREFIX].map((c) => c.charCodeAt(0));

/**
 * OUR_BRANCH_PREFIX and two 32-bit numbers as 16 hex digits, in one flat string: Number#toString(16)
 * cost ~150 ns each, and prefix + digits would be a rope of two strings that every client
 * transaction keeps as its table key.
 */
function branchText(a: number, b: number): string {
  return String.fromCharCode(
    P[0], P[1], P[2], P[3], P[4], P[5], P[6], P[7], P[8],
    HEX[a >>> 28], HEX[(a >>> 24) & 15], HEX[(a >>> 20) & 15], HEX[(a >>> 16) & 15],
    HEX[(a >>> 12) & 15], HEX[(a >>> 8) & 15], HEX[(a >>> 4) & 15], HEX[a & 15],
    HEX[b >>> 28], HEX[(b >>> 24) & 15], HEX[(b >>> 20) & 15], HEX[(b >>> 16) & 15],
    HEX[(b >>> 12) & 15], HEX[(b >>> 8) & 15], HEX[(b >>> 4) & 15], HEX[b & 15],
  );
}

export function branchFor(transactionKey: string): string {
  return hash64Branch(transactionKey);
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
