// The todos: add, edit (double-click), complete, delete (soft) and purge the deleted ones.
import type { Document } from 'ferrosync';
import { useCollection, useSyncEngine, useTransactions } from 'ferrosync/react';
import { memo, useMemo, useState, type FormEvent } from 'react';
import { TODOS, type Todo } from './todo';

/** Reports a write that failed before it was durable (it is not in the list then). */
function report(write: Promise<unknown>) {
  write.catch((error) => console.error('ferrosync demo: the write failed', error));
}

export function TodoList() {
  const engine = useSyncEngine();
  const todos = useCollection<Todo>(TODOS, { sort: 'createdAt' });
  const deleted = useCollection<Todo>(TODOS, { where: { _deleted: true }, includeDeleted: true });
  const unsynced = useUnsyncedIds();
  const [title, setTitle] = useState('');
  const collection = useMemo(() => engine.collection<Todo>(TODOS), [engine]);

  const add = (event: FormEvent) => {
    event.preventDefault();
    const text = title.trim();
    if (!text) return;
    setTitle('');
    report(collection.insert({ _id: crypto.randomUUID(), title: text, completed: false, createdAt: Date.now() }));
  };
  const purge = () => {
    for (const doc of deleted) report(collection.hardDelete(doc._id));
  };
  const left = todos.filter((t) => !t.completed).length;

  return (
    <section className="card todos">
      <form className="add" onSubmit={add}>
        <input
          data-testid="new-todo"
          placeholder="What needs doing?"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          autoFocus
        />
        <button type="submit">Add</button>
      </form>
      {todos.length === 0 ? (
        <p className="empty">Nothing to do. Add a todo, or open another device and watch it arrive.</p>
      ) : (
        <ul className="list" data-testid="todo-list">
          {todos.map((todo) => (
            <TodoItem key={todo._id} todo={todo} unsynced={unsynced.has(todo._id)} />
          ))}
        </ul>
      )}
      <footer className="list-footer">
        <span data-testid="left">
          {left} of {todos.length} left
        </span>
        {deleted.length > 0 && (
          <button className="link" data-testid="purge" onClick={purge}>
            Purge {deleted.length} deleted
          </button>
        )}
      </footer>
    </section>
  );
}

/** One todo; re-renders only when it (or its sync mark) changed. */
const TodoItem = memo(function TodoItem({ todo, unsynced }: { todo: Document<Todo>; unsynced: boolean }) {
  const engine = useSyncEngine();
  const [draft, setDraft] = useState<string | null>(null);
  const todos = engine.collection<Todo>(TODOS);

  const save = () => {
    const text = draft?.trim();
    setDraft(null);
    if (text && text !== todo.title) report(todos.update(todo._id, { title: text }));
  };

  return (
    <li className={todo.completed ? 'todo done' : 'todo'} data-testid="todo" data-id={todo._id}>
      <input
        type="checkbox"
        aria-label="completed"
        checked={todo.completed}
        onChange={() => report(todos.update(todo._id, { completed: !todo.completed }))}
      />
      {draft === null ? (
        <span className="title" data-testid="title" onDoubleClick={() => setDraft(todo.title)}>
          {todo.title}
        </span>
      ) : (
        <input
          className="edit"
          data-testid="edit"
          value={draft}
          autoFocus
          onChange={(e) => setDraft(e.target.value)}
          onBlur={save}
          onKeyDown={(e) => {
            if (e.key === 'Enter') save();
            if (e.key === 'Escape') setDraft(null);
          }}
        />
      )}
      {unsynced && (
        <span className="badge" title="Saved on this device, not yet confirmed by the server">
          unsynced
        </span>
      )}
      <button className="delete" aria-label="delete" onClick={() => report(todos.delete(todo._id))}>
        ×
      </button>
    </li>
  );
});

/** The ids of todos with writes the server has not confirmed yet. */
function useUnsyncedIds(): Set<string> {
  const transactions = useTransactions();
  return useMemo(() => {
    const ids = new Set<string>();
    for (const tx of transactions) {
      if (tx.state === 'completed' || tx.state === 'failed') continue;
      for (const m of tx.mutations) if (m.collection === TODOS) ids.add(m.id);
    }
    return ids;
  }, [transactions]);
}
