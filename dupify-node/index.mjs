// ESM entry: re-exports the CommonJS entry (which loads LibTorch, then the addon).
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const binding = require('./index.js')
export const {
  autoDevice,
  defaultModelDir,
  deviceReport,
  errorCodes,
  rateLimitHeaderPairs,
  CancelToken,
  Catalog,
  Extractor,
  KeyStore,
  Principal,
  libtorch,
} = binding
export default binding
