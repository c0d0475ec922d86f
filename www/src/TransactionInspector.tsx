// Every transaction with its state and attempts, newest first.
import type { Mutation, Transaction } from 'ferrosync';
import { useTransactions } from 'ferrosync/react';

/** How many transactions are listed. */
const SHOWN = 15;

export function TransactionInspector() {
  const transactions = useTransactions();
  const newest = transactions.slice(-SHOWN).reverse();
  return (
    <section className="card inspector">
      <h2>
        Transactions <span className="count">{transactions.length}</span>
      </h2>
      {newest.length === 0 ? (
        <p className="empty">Every write is a transaction; they show up here.</p>
      ) : (
        <ol className="transactions" data-testid="transactions">
          {newest.map((tx) => (
            <TransactionRow key={tx.id} tx={tx} />
          ))}
        </ol>
      )}
    </section>
  );
}

function TransactionRow({ tx }: { tx: Transaction }) {
  const last = tx.attempts.at(-1);
  return (
    <li className="tx" data-testid="transaction" data-state={tx.state}>
      <div className="tx-head">
        <span className="tx-id">#{tx.id}</span>
        <span className={`state ${tx.state}`}>{tx.state.replaceAll('_', ' ')}</span>
        <span className="attempts">
          {tx.attempts.length} attempt{tx.attempts.length === 1 ? '' : 's'}
        </span>
      </div>
      <div className="tx-writes">{tx.mutations.map(describe).join(', ')}</div>
      {tx.error && <div className="tx-error">{tx.error.message}</div>}
      {!tx.error && last?.error && (
        <div className="tx-error">
          attempt {last.id}: {last.error}
          {last.retryScheduledFor && ` (retry at ${new Date(last.retryScheduledFor).toLocaleTimeString()})`}
        </div>
      )}
    </li>
  );
}

function describe(m: Mutation): string {
  switch (m.type) {
    case 'insert':
    case 'put':
      return `${m.type} “${String(m.fields.title ?? m.id)}”`;
    case 'update':
      return `update ${Object.keys(m.patch).join('+')}`;
    case 'delete':
      return 'delete';
  }
}
