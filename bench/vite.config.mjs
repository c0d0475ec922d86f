// The benchmark page's build (scripts/bench.sh): the demo app's (www/vite.config.mjs), with
// workers bundled as ES modules, since the SQLite peers' workers load code on demand (Vite's
// default worker format, IIFE, cannot split code).
import { mergeConfig } from 'vite';
import app from '../www/vite.config.mjs';

export default mergeConfig(app, { worker: { format: 'es' } });
