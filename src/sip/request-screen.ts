/**
 * The seam where checks that run before the guard's own plug into a front end (the embedded
 * proxy's GuardPolicy, the drachtio app's DrachtioFrontEnd). The attack-source defense plugs in
 * here: banned sources, scanner fingerprints, floods. Only what both front ends can give is in
 * it: the source address and transport, the method, and header lookup.
 */
import type { CallObserver } from './call-events';
import type { Peer, Rejection, TransportName } from './policy';

/** The part of a request a screen may look at (a parsed SipRequest, or a drachtio request). */
export interface ScreenedRequest {
  readonly method: string;
  /** A header's value, case-insensitive; undefined when absent. */
  header(name: string): string | undefined;
}

/** A check that runs before the guard's own, for every request from a customer (any method). */
export interface RequestScreen {
  /** As early as the front end can: true drops the request silently. Must be O(1). */
  dropSource?(address: string, transport: TransportName): boolean;
  /** With the headers at hand, before the guard's allowed_sources check; arrivedAt: epoch ms it reached us. */
  screen?(req: ScreenedRequest, from: Peer, arrivedAt?: number): Rejection | 'drop' | null;
}

/** A front end that screens (addScreen) and reports call events (addObserver). */
export interface ScreenHost {
  addScreen(s: RequestScreen): void;
  addObserver(o: CallObserver): unknown;
}
