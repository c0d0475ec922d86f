// Queries as users run them, through the package entry in Chromium: operators, dotted paths,
// sorts and windows (with and without declared indexes), bad queries as TypeErrors, live
// query subscriptions (also across a leading tab closing), and documents that keep their
// identity until they change.
import { check, openPage, withServedPage } from './harness.mjs';

/** Opens a local engine on the page as `window.engine` (a new database each time). */
async function open(page, name, collections = [{ name: 'todos', sync: false }]) {
  await page.evaluate(async ({ name, collections }) => {
    window.engine = await window.ferrosync.SyncEngine.open({ name, collections, requestPersistence: false });
  }, { name, collections });
}

export function queryTests(binary, www) {
  return {
    async documents_keep_their_identity_until_they_change() {
      await withServedPage(binary, www, async ({ page }) => {
        await open(page, `identity-${Date.now()}`, [{ name: 'todos', sync: false }, { name: 'lists', sync: false }]);
        const result = await page.evaluate(async () => {
          const todos = window.engine.collection('todos');
          const lists = window.engine.collection('lists');
          await todos.insert({ _id: 'a', title: 'alpha', tags: ['x'], meta: { rank: 1 } });
          await todos.insert({ _id: 'b', title: 'beta' });
          await lists.insert({ _id: 'l', name: 'list' });
          const a = todos.get('a');
          const b = todos.get('b');
          const found = todos.find({ sort: 'title' });
          const before = {
            sameCollection: window.engine.collection('todos') === todos,
            sameGet: todos.get('a') === a,
            sameFind: found[0] === a && found[1] === b,
            frozen: Object.isFrozen(a) && Object.isFrozen(a.tags) && Object.isFrozen(a.meta),
          };
          // A subscriber reads the engine from its callback: never a stale document, even of
          // another collection written in the same transaction.
          const seen = [];
          const stop = todos.subscribe(() => seen.push([todos.get('a')?.title, lists.get('l')?.name]));
          await window.engine.transaction((t) => {
            t.collection('todos').update('a', { title: 'alpha 2' });
            t.collection('lists').update('l', { name: 'list 2' });
          });
          stop();
          const after = todos.get('a');
          const refound = todos.find({ sort: 'title' });
          const counted = [todos.count({ where: { title: 'beta' } })];
          await todos.delete('b');
          counted.push(todos.count({ where: { title: 'beta' } }), todos.count());
          const withDeleted = todos.find({ includeDeleted: true, sort: 'title' });
          return {
            before,
            seen,
            changed: after !== a && after.title === 'alpha 2' && refound[0] === after,
            unchangedKept: refound[1] === b,
            deletedHidden: todos.get('b') === undefined,
            counted: counted.join(' '),
            tombstone: withDeleted[1]?._deleted === true && Object.isFrozen(withDeleted[1]),
            mutationRefused: (() => {
              try {
                after.title = 'hacked';
              } catch {
                // Strict code throws on a frozen object; sloppy code ignores the write.
              }
              return after.title === 'alpha 2';
            })(),
          };
        });
        check(Object.values(result.before).every(Boolean), `identity before a change: ${JSON.stringify(result.before)}`);
        check(JSON.stringify(result.seen) === JSON.stringify([['alpha 2', 'list 2']]), `callbacks read fresh documents: ${JSON.stringify(result.seen)}`);
        check(result.changed && result.unchangedKept, 'a changed document is a new object; the others keep theirs');
        check(result.deletedHidden && result.tombstone && result.mutationRefused, JSON.stringify(result));
        check(result.counted === '1 0 1', `counts follow the writes: ${result.counted}`);
        // A freed collection object is forgotten: the next one for the name keeps documents of
        // its own, which follow the writes as before.
        const freed = await page.evaluate(async () => {
          const todos = window.engine.collection('todos');
          todos.free();
          const again = window.engine.collection('todos');
          const before = again.get('a');
          await again.update('a', { title: 'alpha 3' });
          const after = again.get('a');
          return { newObject: again !== todos, before: before?.title, after: after?.title, kept: again.get('a') === after };
        });
        check(JSON.stringify(freed) === JSON.stringify({ newObject: true, before: 'alpha 2', after: 'alpha 3', kept: true }), `after free: ${JSON.stringify(freed)}`);
      });
    },

    async queries_filter_sort_and_page_with_and_without_indexes() {
      await withServedPage(binary, www, async ({ page }) => {
        for (const indexes of [[], ['done', ['done', 'n'], 'meta.city']]) {
          await open(page, `queries-${Date.now()}-${indexes.length}`, [{ name: 'todos', sync: false, indexes }]);
          const ids = await page.evaluate(async () => {
            const todos = window.engine.collection('todos');
            await window.engine.transaction((t) => {
              for (let i = 0; i < 40; i++) {
                t.collection('todos').insert({
                  _id: `d${String(i).padStart(2, '0')}`, n: i, done: i % 3 === 0, title: `t${i % 7}`,
                  ...(i % 4 ? { meta: { city: ['Oslo', 'Rome', 'Lima'][i % 3] } } : {}),
                });
              }
            });
            const run = (q) => todos.find(q).map((d) => d._id).join(' ');
            return {
              range: run({ where: { n: { $gt: 34 } } }),
              between: run({ where: { n: { $gte: 10, $lt: 13 }, done: { $ne: true } } }),
              inList: run({ where: { n: { $in: [1, 2, 39, 99] } } }),
              notIn: todos.count({ where: { title: { $nin: ['t0', 't1', 't2', 't3', 't4', 't5'] } } }),
              exists: todos.count({ where: { meta: { $exists: false } } }),
              nested: run({ where: { 'meta.city': 'Oslo', done: true } }),
              twoSorts: run({ where: { n: { $lt: 8 } }, sort: ['title', '-n'] }),
              page: run({ where: { done: false }, sort: '-n', offset: 2, limit: 3 }),
              firstById: run({ where: { done: false }, offset: 2, limit: 4 }),
              counted: todos.count({ where: { done: false }, offset: 20, limit: 100 }),
            };
          });
          const expected = {
            range: 'd35 d36 d37 d38 d39',
            between: 'd10 d11',
            inList: 'd01 d02 d39',
            notIn: 5,
            exists: 10,
            nested: 'd03 d06 d09 d15 d18 d21 d27 d30 d33 d39',
            twoSorts: 'd07 d00 d01 d02 d03 d04 d05 d06',
            page: 'd35 d34 d32',
            firstById: 'd04 d05 d07 d08',
            counted: 6,
          };
          check(JSON.stringify(ids) === JSON.stringify(expected), `indexes ${JSON.stringify(indexes)}: ${JSON.stringify(ids)}`);
          await page.evaluate(() => window.engine.destroy());
        }
      });
    },

    async a_bad_query_is_a_type_error_naming_the_operator() {
      await withServedPage(binary, www, async ({ page }) => {
        await open(page, `bad-${Date.now()}`);
        const errors = await page.evaluate(() => {
          const todos = window.engine.collection('todos');
          const attempt = (f) => {
            try {
              f();
              return 'no error';
            } catch (e) {
              return `${e.name}: ${e.message}`;
            }
          };
          return [
            attempt(() => todos.find({ where: { n: { $foo: 1 } } })),
            attempt(() => todos.count({ where: { n: { $gt: [1] } } })),
            attempt(() => todos.find({ where: { n: { $in: 3 } } })),
            attempt(() => todos.subscribe({ where: { $or: [] } }, () => {})),
            attempt(() => todos.find({ wher: {} })),
          ];
        });
        const expected = ['`$foo`', '`$gt`', '`$in`', '`$or`', '`wher`'];
        errors.forEach((error, i) => {
          check(error.startsWith('TypeError: ') && error.includes(expected[i]), `${error} should name ${expected[i]}`);
        });
      });
    },

    async a_query_subscription_reports_the_changes_to_its_results() {
      await withServedPage(binary, www, async ({ page }) => {
        await open(page, `live-${Date.now()}`);
        const log = await page.evaluate(async () => {
          const todos = window.engine.collection('todos');
          const query = { where: { done: false }, sort: 'title', limit: 2 };
          const log = [];
          const stop = todos.subscribe(query, (changes) => {
            log.push(changes.map((c) => `${c.type} ${c.id}`).join(', ') + ` | ${todos.find(query).map((d) => d._id).join(' ')}`);
          });
          await todos.insert({ _id: 'b', title: 'b', done: false });
          await todos.insert({ _id: 'x', title: 'x', done: true });
          await todos.insert({ _id: 'a', title: 'a', done: false });
          await todos.insert({ _id: 'c', title: 'c', done: false });
          await todos.update('a', { done: true });
          await todos.update('b', { note: 1 });
          stop();
          await todos.insert({ _id: '0', title: '0', done: false });
          return log;
        });
        const expected = [
          'added b | b',
          'added a | a b',
          'removed a, added c | b c',
          'updated b | b c',
        ];
        check(JSON.stringify(log) === JSON.stringify(expected), `changes: ${JSON.stringify(log)}`);
      });
    },

    async query_subscriptions_follow_a_tab_that_takes_over() {
      await withServedPage(binary, www, async ({ context, page, origin }) => {
        const name = `takeover-${Date.now()}`;
        await open(page, name);
        const second = await openPage(context, origin);
        await open(second, name);
        await second.evaluate(() => {
          window.seen = [];
          window.engine.collection('todos').subscribe({ where: { done: false } }, (changes) => {
            window.seen.push(...changes.map((c) => `${c.type} ${c.id}`));
          });
        });
        await page.evaluate(() => window.engine.collection('todos').insert({ _id: 'before', done: false }));
        await second.waitForFunction(() => window.seen.includes('added before'));
        await page.close();
        // Forwarded to the tab that closed, this write completes once the second tab leads;
        // the next one goes through its own engine, and reaches the subscription.
        await second.evaluate(() => window.engine.collection('todos').insert({ _id: 'after', done: false }));
        await second.evaluate(() => window.engine.collection('todos').insert({ _id: 'later', done: false }));
        const seen = await second.evaluate(() => window.seen);
        check(JSON.stringify(seen) === JSON.stringify(['added before', 'added after', 'added later']), `changes: ${seen}`);
        const open_ = await second.evaluate(() => window.engine.collection('todos').find({ where: { done: false } }).map((d) => d._id));
        check(JSON.stringify(open_) === JSON.stringify(['after', 'before', 'later']), `results after the takeover: ${open_}`);
      });
    },
  };
}
