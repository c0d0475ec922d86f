// The one document type of the demo.

/** A todo's fields (its id is the document's `_id`). */
export interface Todo {
  title: string;
  completed: boolean;
  /** When it was added (ms since epoch): the list's order. */
  createdAt: number;
}

/** The collection the todos live in. */
export const TODOS = 'todos';
