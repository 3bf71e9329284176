// Public entry point of natt: re-exports the API of every layer.

export * from './errors';
export * from './sadb/types';
export { hideKey, hideSaKeys, withoutKeys } from './sadb/keys';
export { openSadb, chooseSadbBackend, type OpenSadbOptions } from './sadb/open';
export * from './esp';
