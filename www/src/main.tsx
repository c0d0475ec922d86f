// Opens the engine against the server that serves this page, then renders the app.
import init, { SyncEngine } from 'ferrosync';
import { SyncProvider } from 'ferrosync/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { settings } from './settings';
import './style.css';

const root = createRoot(document.getElementById('root')!);

try {
  // Written next to the app by `npm start`: the development token of the server it started.
  const config: { authToken: string } = await fetch('./config.json').then((r) => {
    if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
    return r.json();
  });
  await init();
  const engine = await SyncEngine.open({
    // Each "device" (see settings.ts) is a database of its own.
    name: `ferrosync-demo-${settings.device}`,
    collections: [{ name: 'todos' }],
    serverUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/sync`,
    authToken: config.authToken,
    autoStart: !settings.offline,
    ...(settings.manualConflicts
      ? { conflictStrategy: 'custom' as const, conflictResolver: () => undefined }
      : { conflictStrategy: 'last-write-wins' as const }),
  });
  root.render(
    <StrictMode>
      <SyncProvider engine={engine}>
        <App />
      </SyncProvider>
    </StrictMode>,
  );
} catch (error) {
  root.render(<p className="fatal">The app failed to start: {String(error)}</p>);
  throw error;
}
