// The credential every API call sends as `Authorization: Bearer …`: a
// coordinator's session token (server/web keeps it in sessionStorage, for the
// tab's life) or a phone's device credential (the field app keeps it in
// IndexedDB with the enrolment). Never put in a URL by the API client.
import { signal } from './state.js';

/** The bearer credential, or null when there is none. */
export const credential = signal(null);

let refusedHandler = () => {};

/**
 * What the app does when the server answers 401 to the credential (expired
 * or revoked): the coordinators' app logs out; the field app keeps the
 * phone's credential and shows the error where it happened.
 */
export function whenCredentialRefused(handler) {
  refusedHandler = handler;
}

/** Tells the app the server refused the credential it holds. */
export function credentialRefused() {
  if (credential.get()) refusedHandler();
}
