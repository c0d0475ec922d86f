// The sync status, the stats, sync progress, the offline switch and the device this tab plays.
import { useSyncEngine, useSyncStats, useSyncStatus } from 'ferrosync/react';
import { useState } from 'react';
import { nextDeviceUrl, rememberOffline, settings } from './settings';
import { SyncProgress } from './SyncProgress';

const LABELS = { idle: 'Synced', syncing: 'Syncing…', error: 'Sync error', offline: 'Offline' };

export function StatusBar() {
  const engine = useSyncEngine();
  const status = useSyncStatus();
  const stats = useSyncStats();
  const [offline, setOffline] = useState(settings.offline);

  const toggle = async () => {
    const next = !offline;
    setOffline(next);
    rememberOffline(next);
    await (next ? engine.stop() : engine.start());
  };

  return (
    <header className="bar">
      <div className="brand">
        <h1>Ferrosync todos</h1>
        <span className="device">
          device {settings.device} ·{' '}
          <a href={nextDeviceUrl()} target="_blank" rel="noreferrer">
            open another device
          </a>
        </span>
      </div>
      <span className="status" data-testid="status" data-status={status}>
        <span className="dot" />
        {LABELS[status]}
      </span>
      <dl className="stats" data-testid="stats">
        <dt>pushed</dt>
        <dd data-testid="pushed">{stats.pushCount}</dd>
        <dt>pulled</dt>
        <dd data-testid="pulled">{stats.pullCount}</dd>
        <dt>conflicts</dt>
        <dd>{stats.conflictCount}</dd>
        <dt>last sync</dt>
        <dd>{stats.lastSyncAt ? new Date(stats.lastSyncAt).toLocaleTimeString() : 'never'}</dd>
      </dl>
      <SyncProgress />
      <label className="switch">
        <input type="checkbox" data-testid="online" checked={!offline} onChange={toggle} />
        <span>{offline ? 'Offline' : 'Online'}</span>
      </label>
      {stats.lastError && (
        <p className="last-error" data-testid="last-error">
          Last error: {stats.lastError}
        </p>
      )}
    </header>
  );
}
