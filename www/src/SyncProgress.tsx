// How far sync has come: a progress bar while a pull runs (an initial sync, catching up after
// being offline), and how many writes of this device the server has not confirmed yet.
import { useSyncProgress } from 'ferrosync/react';

export function SyncProgress() {
  const { unsyncedWrites, pull } = useSyncProgress();
  return (
    <div className="progress">
      {pull && (
        <label className="pull">
          <progress data-testid="pull-progress" value={pull.received} max={pull.total} />
          <span>
            Syncing {pull.received.toLocaleString()} of {pull.total.toLocaleString()} changes
          </span>
        </label>
      )}
      {unsyncedWrites > 0 && (
        <span className="unsynced" data-testid="unsynced">
          {unsyncedWrites} unsynced write{unsyncedWrites === 1 ? '' : 's'}
        </span>
      )}
    </div>
  );
}
