// The conflict inbox: with manual resolution on, concurrent edits wait here for a choice.
import type { Conflict } from 'ferrosync';
import { useConflicts, useSyncEngine } from 'ferrosync/react';
import { settings, switchConflictMode } from './settings';

export function ConflictView() {
  const conflicts = useConflicts();
  return (
    <section className="card conflicts">
      <h2>
        Conflicts <span className="count">{conflicts.length}</span>
      </h2>
      <label className="mode">
        <input
          type="checkbox"
          data-testid="manual-conflicts"
          checked={settings.manualConflicts}
          onChange={(e) => switchConflictMode(e.target.checked)}
        />
        Resolve by hand (otherwise the last write wins)
      </label>
      <ul className="conflict-list" data-testid="conflicts">
        {conflicts.map((c) => (
          <ConflictRow key={c.id} conflict={c} />
        ))}
      </ul>
    </section>
  );
}

function ConflictRow({ conflict }: { conflict: Conflict }) {
  const engine = useSyncEngine();
  const mine = conflict.local;
  const theirs = conflict.remote;
  return (
    <li className="conflict" data-testid="conflict">
      <div>
        <b>Mine:</b> {mine ? String(mine.title) : '(deleted here)'}
      </div>
      <div>
        <b>Theirs:</b> {theirs._deleted ? '(deleted there)' : String(theirs.title)}
      </div>
      <div className="actions">
        <button disabled={!mine} onClick={() => mine && engine.resolveConflict(conflict.id, strip(mine))}>
          Keep mine
        </button>
        <button onClick={() => engine.resolveConflict(conflict.id, strip(theirs))}>Take theirs</button>
      </div>
    </li>
  );
}

/** A document's fields without its id. */
function strip({ _id, ...fields }: Conflict['remote']) {
  return fields;
}
