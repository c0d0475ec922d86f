// Per-tab settings that shape how the engine is opened.

const params = new URLSearchParams(location.search);

/** The device this tab plays (`?device=2`): each has its own IndexedDB database, so two tabs of
 * one browser can act as two users. */
const device = params.get('device') ?? '1';

const offlineKey = `ferrosync-demo-${device}-offline`;
const conflictsKey = `ferrosync-demo-${device}-manual-conflicts`;

export const settings = {
  device,
  /** The offline switch, kept across reloads of this tab. */
  offline: sessionStorage.getItem(offlineKey) === 'true',
  /** Park conflicts in the inbox instead of last-write-wins. */
  manualConflicts: localStorage.getItem(conflictsKey) === 'true',
};

/** Remembers the offline switch. */
export function rememberOffline(offline: boolean): void {
  sessionStorage.setItem(offlineKey, String(offline));
}

/** Changes the conflict strategy: the engine is opened again with it. */
export function switchConflictMode(manual: boolean): void {
  localStorage.setItem(conflictsKey, String(manual));
  location.reload();
}

/** The address of the next device, to open in another tab. */
export function nextDeviceUrl(): string {
  const url = new URL(location.href);
  url.searchParams.set('device', String(Number(device) + 1 || 2));
  return url.toString();
}
