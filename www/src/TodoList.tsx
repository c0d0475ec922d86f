// The todos: add, edit (double-click), complete (one, or all in one transaction), delete (soft)
// and purge the deleted ones.
import type { Document } from 'ferrosync';
import { useCollection, useMutations, useSyncEngine, useTransactions, type CollectionMutations } from 'ferrosync/react';
import { memo, useMemo, useState, type FormEvent } from 'react';
import { TODOS, type Todo } from './todo';

export function TodoList() {
  const engine = useSyncEngine();
  const todos = useCollection<Todo>(TODOS, { sort: 'createdAt' });
  const deleted = useCollection<Todo>(TODOS, { where: { _deleted: true }, includeDeleted: true });
  // The write functions keep their identity, so the memoised rows take them as props.
  const { insert, update, delete: remove, withMutation, error } = useMutations<Todo>(TODOS);
  const unsynced = useUnsyncedIds();
  const [title, setTitle] = useState('');
  const collection = useMemo(() => engine.collection<Todo>(TODOS), [engine]);

  const add = (event: FormEvent) => {
    event.preventDefault();
    const text = title.trim();
    if (!text) return;
    setTitle('');
    void insert({ _id: crypto.randomUUID(), title: text, completed: false, createdAt: Date.now() }, { metadata: { via: 'form' } });
  };
  const completeAll = () =>
    withMutation(
      (t) => {
        for (const todo of todos) if (!todo.completed) t.update(todo._id, { completed: true });
      },
      { metadata: { via: 'complete all' } },
    );
  const purge = () => {
    for (const doc of deleted) {
      collection.hardDelete(doc._id).catch((e) => console.error('ferrosync demo: the purge failed', e));
    }
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
            <TodoItem key={todo._id} todo={todo} unsynced={unsynced.has(todo._id)} update={update} remove={remove} />
          ))}
        </ul>
      )}
      <footer className="list-footer">
        <span data-testid="left">
          {left} of {todos.length} left
        </span>
        {left > 1 && (
          <button className="link" data-testid="complete-all" onClick={() => void completeAll()}>
            Complete all
          </button>
        )}
        {deleted.length > 0 && (
          <button className="link" data-testid="purge" onClick={purge}>
            Purge {deleted.length} deleted
          </button>
        )}
      </footer>
      {error && (
        <p className="write-error" data-testid="write-error">
          The last write failed: {error.message}
        </p>
      )}
    </section>
  );
}

interface TodoItemProps {
  todo: Document<Todo>;
  unsynced: boolean;
  update: CollectionMutations<Todo>['update'];
  remove: CollectionMutations<Todo>['delete'];
}

/** One todo; re-renders only when it (or its sync mark) changed. */
const TodoItem = memo(function TodoItem({ todo, unsynced, update, remove }: TodoItemProps) {
  const [draft, setDraft] = useState<string | null>(null);

  const save = () => {
    const text = draft?.trim();
    setDraft(null);
    if (text && text !== todo.title) void update(todo._id, { title: text });
  };

  return (
    <li className={todo.completed ? 'todo done' : 'todo'} data-testid="todo" data-id={todo._id}>
      <input
        type="checkbox"
        aria-label="completed"
        checked={todo.completed}
        onChange={() => void update(todo._id, { completed: !todo.completed })}
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
      <button className="delete" aria-label="delete" onClick={() => void remove(todo._id)}>
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
