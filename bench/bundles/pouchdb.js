// PouchDB for the browser (IndexedDB storage, replication over HTTP).
export { default as PouchDB } from 'pouchdb-browser';
