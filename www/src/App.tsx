// The page: status and stats on top, the todo list, and beside it what the engine is doing.
import { ConflictView } from './ConflictView';
import { StatusBar } from './StatusBar';
import { TodoList } from './TodoList';
import { TransactionInspector } from './TransactionInspector';

export function App() {
  return (
    <div className="app">
      <StatusBar />
      <main className="columns">
        <TodoList />
        <aside className="side">
          <ConflictView />
          <TransactionInspector />
        </aside>
      </main>
    </div>
  );
}
