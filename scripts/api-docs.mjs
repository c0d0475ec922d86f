// Writes the API reference (docs/API.md) from the declarations of a built package:
//
//   node scripts/api-docs.mjs <package-dir> > docs/API.md
//
// Every exported name gets a heading (`### \`Name\``; class members `#### \`Class.member\``),
// its doc comment and its declaration. `npm test` regenerates it and fails when docs/API.md
// differs, so the reference always covers the whole public surface. Plain Node, no dependencies:
// the declarations are tsc's and wasm-bindgen's output, regular enough to read line by line.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = process.argv[2];
if (!pkg) {
  console.error('usage: node scripts/api-docs.mjs <package-dir> > docs/API.md');
  process.exit(2);
}

/** The modules, in the order the reference presents them. */
const MODULES = [
  { file: 'ferrosync.d.ts', title: 'The engine', from: 'ferrosync' },
  { file: 'errors.d.ts', title: 'Errors', from: 'ferrosync' },
  { file: 'connectors.d.ts', title: 'REST connectors', from: 'ferrosync' },
  { file: 'testing.d.ts', title: 'Test harness', from: 'ferrosync' },
  { file: 'react.d.ts', title: 'React hooks', from: 'ferrosync/react' },
];

/** wasm-bindgen's loader, whose generated comments describe its internals: described here. */
const LOADER = {
  InitInput: 'What `init` accepts as the WebAssembly module: a URL, a response, bytes or a compiled module.',
  InitOutput: "The instantiated module's raw exports, as `init` resolves to them (internal: use the classes above).",
  SyncInitInput: 'What `initSync` accepts: bytes or a compiled module.',
  initSync: 'Instantiates the WebAssembly module synchronously from its bytes or a compiled module (where the platform allows synchronous compilation).',
  init: 'The default export: loads and instantiates the WebAssembly module. Call and await it once before using anything else; by default it fetches `ferrosync_bg.wasm` next to the module.',
};

/** Top-level statements of a declaration file, each with the doc comment before it. */
function statements(source) {
  const lines = source.split('\n');
  const out = [];
  let doc = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('/**')) {
      doc = [];
      for (; i < lines.length; i++) {
        doc.push(lines[i]);
        if (lines[i].includes('*/')) break;
      }
      continue;
    }
    if (!line.startsWith('export ') || /^export (\*|\{)/.test(line)) {
      if (line.trim() !== '') doc = [];
      continue;
    }
    const body = [line];
    let depth = count(line);
    while (!(depth <= 0 && /[;}]\s*$/.test(body.at(-1))) && i + 1 < lines.length) {
      body.push(lines[++i]);
      depth += count(lines[i]);
    }
    out.push({ doc: docText(doc), code: body.join('\n') });
    doc = [];
  }
  return out;
}

/** Net nesting a line opens: braces and parentheses. */
function count(line) {
  let n = 0;
  for (const c of line) {
    if (c === '{' || c === '(') n++;
    else if (c === '}' || c === ')') n--;
  }
  return n;
}

/** A doc comment's text as Markdown. */
function docText(lines) {
  const text = lines
    .map((l) => l.replace(/^\s*\/\*\*\s?/, '').replace(/\s*\*\/\s*$/, '').replace(/^\s*\*\s?/, ''))
    .join('\n')
    .trim()
    .replace(/\{@link ([^}]+)\}/g, '`$1`');
  const out = [];
  for (const part of text.split(/\n(?=@)/)) {
    const tag = part.match(/^@(\w+)\s*([\s\S]*)$/);
    if (!tag) out.push(part);
    else if (tag[1] === 'param' || tag[1] === 'typeParam') {
      const [, name, rest] = tag[2].match(/^(\S+)\s*(?:-\s*)?([\s\S]*)$/);
      out.push(`- \`${name}\`: ${rest}`);
    } else if (tag[1] === 'returns') out.push(`Returns ${tag[2]}`);
    else if (tag[1] === 'defaultValue') out.push(`Default: ${tag[2]}`);
    else out.push(`${tag[1]}: ${tag[2]}`);
  }
  return out.join('\n\n');
}

/** The members of a class body, each with its doc comment (private ones and `free` left out). */
function members(code) {
  const lines = code.split('\n').slice(1, -1);
  const out = [];
  let doc = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.startsWith('/**')) {
      doc = [];
      for (; i < lines.length; i++) {
        doc.push(lines[i]);
        if (lines[i].includes('*/')) break;
      }
      continue;
    }
    const body = [line];
    let depth = count(line);
    while (depth > 0 && i + 1 < lines.length) {
      body.push(lines[++i].trim());
      depth += count(lines[i]);
    }
    const name = line.match(/^(?:static\s+)?(?:readonly\s+)?([A-Za-z_$][\w$]*)/)?.[1];
    if (name && !line.startsWith('private') && name !== 'free') {
      out.push({ name, static: line.startsWith('static'), doc: docText(doc), code: body.join(' ') });
    }
    doc = [];
  }
  return out;
}

const declared = (code) => code.match(/^export (?:declare )?(?:default )?(class|function|interface|type|const)\s+([\w$]+)/);
const fence = (code) => `\`\`\`ts\n${code}\n\`\`\``;

const md = [
  '# API reference',
  '',
  '<!-- Generated by scripts/api-docs.mjs from the built package; `npm test` checks it is current. -->',
  '',
  "Everything the `ferrosync` package exports, and its React entry `ferrosync/react`. Start with",
  "the [README](../README.md) and the [guide](GUIDE.md); this page lists every name.",
  '',
  '```js',
  "import init, { SyncEngine, NonRetriableError, createSyncConnector, createTestCollection } from 'ferrosync';",
  "import { SyncProvider, useCollection } from 'ferrosync/react';",
  '```',
  '',
  'Classes backed by WebAssembly also have `free()`, which releases their memory at once instead of',
  'when they are garbage-collected.',
];
const contents = [];
const sections = [];
for (const module of MODULES) {
  const entries = statements(readFileSync(join(pkg, module.file), 'utf8'));
  const out = [`## ${module.title}`, '', `From \`${module.from}\`.`];
  const names = [];
  for (const { doc, code } of entries) {
    const match = declared(code);
    if (!match) throw new Error(`${module.file}: cannot read the declaration ${code.split('\n')[0]}`);
    const [, kind, raw] = match;
    const name = raw === '__wbg_init' ? 'init' : raw;
    const text = LOADER[name] ?? doc;
    if (!text) throw new Error(`${module.file}: \`${name}\` has no doc comment`);
    names.push(name);
    out.push('', `### \`${name}\``, '', text, '');
    if (name === 'InitOutput') {
      out.push(fence('export interface InitOutput { readonly memory: WebAssembly.Memory; /* and the raw exports */ }'));
    } else if (kind === 'class') {
      out.push(fence(code.split('\n')[0].replace(/\s*\{$/, '')));
      for (const m of members(code)) {
        out.push('', `#### \`${name}.${m.name}\``, '', m.doc || '(no description)', '', fence(m.code));
      }
    } else {
      out.push(fence(name === 'init' ? code.replace('__wbg_init ', 'init') : code));
    }
  }
  contents.push(`- [${module.title}](#${module.title.toLowerCase().replace(/\s+/g, '-')}): ${names.map((n) => `\`${n}\``).join(', ')}`);
  sections.push(...out, '');
}
console.log([...md, '', '## Contents', '', ...contents, '', ...sections].join('\n').trimEnd());
