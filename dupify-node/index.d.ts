/* eslint-disable */
// Header of index.d.ts (package.json napi.dtsHeaderFile); the rest of index.d.ts is generated.
// Data types of the Dupify Node binding. Data objects are the Rust core's JSON (snake_case
// keys, the hosted API's names); embeddings are Float32Array in results and
// Float32Array | number[] in arguments; f32 values arrive widened exactly to JS numbers.
// Binding options (constructor/open options, batch options) use camelCase.
// This header is prepended by `napi build` (package.json napi.dtsHeaderFile); the classes
// and functions below it are generated from the Rust source.

/** A vector argument: `Float32Array` or plain numbers. */
export type Vector = Float32Array | number[]

/** An image: encoded bytes, a file path, or an explicit form. */
export type ImageInput =
  | Uint8Array
  | ArrayBuffer
  | string
  | { path: string }
  | { base64: string }
  | { bytes: Uint8Array }
  | { url: string }
  | { width: number; height: number; layout: 'rgb' | 'rgba'; data: Uint8Array }

export type OpName =
  | 'embed' | 'colors' | 'colours' | 'silhouette' | 'cutout' | 'background-remove'
  | 'attributes' | 'quality' | 'all'
/** Operations: `"embed,colors"`, `["embed", "colors"]` or `"all"`. */
export type Ops = string | OpName[]

/** Every hosted error code (the Rust crates' one table; `errorCodes()` lists it at run time). */
export type ErrorCode =
  | 'missing_parameter'
  | 'invalid_parameter'
  | 'invalid_base64'
  | 'unsupported_format'
  | 'image_processing_failed'
  | 'invalid_image_url'
  | 'image_fetch_failed'
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'expired_api_key'
  | 'insufficient_scope'
  | 'rate_limit_exceeded'
  | 'quota_exceeded'
  | 'not_found'
  | 'conflict'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'request_timeout'
  | 'not_available'
  | 'model_error'
  | 'cancelled'
  | 'internal_error'
/** One row of `errorCodes()`. */
export interface ErrorCodeInfo { code: ErrorCode; http_status: number; meaning: string }

/** An `Error` with the hosted error code. */
export interface DupifyError extends Error {
  /** Hosted error code: `invalid_parameter`, `invalid_base64`, `image_processing_failed`, … */
  code: ErrorCode
  /** HTTP status the hosted API answers with. */
  status: number
  /** `Retry-After` seconds for `rate_limit_exceeded` / `quota_exceeded`. */
  retryAfterSecs?: number
}

export interface ExtractorOptions {
  /** CLIP checkpoint directory (`config.json` + `model.safetensors`). */
  modelDir?: string
  /** `auto` (default), `cpu`, `cuda`, `cuda:N`. */
  device?: string
  /** `f32` (default), `f16`, `bf16`, `int8` (CPU only). */
  precision?: string
  threads?: number
  limits?: { maxBytes?: number; maxPixels?: number; maxSide?: number }
  resizeMode?: 'center_crop' | 'pad_to_square'
  workingSide?: number
  /** How large JPEGs decode: 1 (default) at 1/2, 1/4 or 1/8 scale while every view still fits
   * (PIL's draft rule), 2 at twice that size, 0 always at full size. */
  reducedDecodeMargin?: number
  batchSize?: number
  cacheCapacity?: number
  /** The core's ColorOptions JSON; missing fields keep their defaults. */
  colorOptions?: {
    num_colors?: number
    exclude_background?: boolean
    min_share?: number
    merge_delta_e?: number
    num_background_colors?: number
    suppress_skin?: boolean
  }
}

export interface BatchOptions {
  /** Called on the JS thread after items finish: `(done, total)`. */
  progress?: (done: number, total: number) => void
  cancel?: CancelToken
}

export interface DominantColor {
  share: number
  hex: string
  rgb: [number, number, number]
  lab: [number, number, number]
  name: string
  name_distance: number
  family: string
}

export interface ColorReport {
  colors: DominantColor[]
  background: DominantColor[]
  product_fraction: number
  family: string | null
  foreground: string
  skin_share: number
}

export interface BoundingBox { x: number; y: number; width: number; height: number }

export interface SilhouetteFeatures {
  bbox: BoundingBox
  area_fraction: number
  confidence: number
  embedding: Float32Array
}

export interface LabelScore { label: string; probability: number }

export interface AttributePrediction {
  attribute: string
  label: string
  probability: number
  distribution: LabelScore[]
  head: string
}

export interface AttributeReport {
  category: string
  group: string
  category_source: 'predicted' | 'given'
  attributes: AttributePrediction[]
}

export interface QualityScore {
  overall: number
  sharpness: number
  brightness: number
  composition: number
}

/** Everything extracted from one image; `null` for operations not requested. */
export interface Features {
  content_hash: string
  width: number
  height: number
  embedding: Float32Array | null
  dimensions: number | null
  colors: ColorReport | null
  silhouette: SilhouetteFeatures | null
  /** Cut-out PNG (present only when `cutout` was requested). */
  cutout_png?: Buffer
  attributes: AttributeReport | null
  quality: QualityScore | null
  model: string | null
  cached: boolean
  processing_time_ms: number
}

/** What a loaded model is (`Extractor.modelInfo()`). */
export interface ModelInfo {
  architecture: 'clip' | 'efficientnet_lite'
  name: string
  content_hash: string
  dimensions: number
  image_size: number
  has_text_tower: boolean
}

export interface DeviceReport {
  cuda_available: boolean
  cuda_device_count: number
  cudnn_available: boolean
  intra_op_threads: number
  auto_device: string
}

// ---- catalog -----------------------------------------------------------------------------

export interface CatalogOptions {
  dim?: number
  index?: {
    m?: number
    efConstruction?: number
    efSearch?: number
    targetRecall?: number
    maxLayers?: number
    bruteForceBelow?: number
    rebuildTombstoneRatio?: number
  }
  persistIndex?: boolean
  synchronousFull?: boolean
}

export interface Namespace { account: string; environment: 'live' | 'test' }

/** A stored colour: CIELAB and its share of the product in percent (0–100), as in `Features`. */
export interface ColorSwatch { lab: [number, number, number]; share: number }

export interface ProductFeaturesInput {
  clip?: Vector | null
  shape?: Vector | null
  colors?: ColorSwatch[]
  attributes?: unknown
  model_id?: string | null
}

export interface ProductFeatures {
  clip: Float32Array | null
  shape: Float32Array | null
  colors: ColorSwatch[]
  attributes: unknown
  model_id: string | null
}

export interface NewProduct {
  external_id: string
  title?: string | null
  sku?: string | null
  description?: string | null
  brand?: string | null
  category?: string | null
  price?: number | null
  currency?: string | null
  image_url?: string | null
  product_url?: string | null
  metadata?: Record<string, unknown>
  features?: ProductFeaturesInput
  image_hash?: string | null
}

export interface Product {
  id: string
  external_id: string
  title: string | null
  sku: string | null
  description: string | null
  brand: string | null
  category: string | null
  price: number | null
  currency: string
  image_url: string | null
  product_url: string | null
  metadata: Record<string, unknown>
  features: ProductFeatures
  image_hash: string | null
  created_at_ms: number
  updated_at_ms: number
  namespace: Namespace
}

export interface ProductFilter {
  category?: string | null
  brand?: string | null
  exclude_brands?: string[]
  min_price?: number | null
  max_price?: number | null
  currency?: string | null
  /** `[key, value]` pairs a product's metadata must equal. */
  metadata_eq?: Array<[string, unknown]>
}

export interface Page { limit?: number; cursor?: string | null }

export interface ListPage { items: Product[]; next_cursor: string | null }

export interface ChannelWeights { clip: number; shape: number; color: number }

export interface ChannelScores { clip: number | null; shape: number | null; color: number | null }

export interface SearchQuery {
  embedding?: Vector | null
  shape?: Vector | null
  colors?: ColorSwatch[]
  by_product?: string | null
  filter?: ProductFilter
  cheaper_by_percent?: number | null
  weights?: ChannelWeights | null
  min_score?: number | null
  exclude_own_brand?: boolean
  limit?: number
  offset?: number
}

export interface SearchHit { product: Product; score: number; scores: ChannelScores }

export interface IndexReport {
  namespace: Namespace
  mode: 'exact' | 'ann'
  source: 'memory' | 'loaded' | 'reconciled' | 'rebuilt'
  live: number
  tombstones: number
  ef_search: number | null
  recall_at_10: number | null
}

export interface IngestItem { product: NewProduct; image: ImageInput }

export interface IngestFailure { external_id: string; code: string; message: string }

export interface IngestReport { indexed: number; skipped: number; failed: IngestFailure[] }

// ---- keys --------------------------------------------------------------------------------

export interface KeyStoreOptions { flushIntervalMs?: number; busyTimeoutMs?: number }

export type Scope = 'embed' | 'colors' | 'silhouette' | 'attributes' | 'batch' | 'catalog'

export type Tier = 'free' | 'starter' | 'pro' | 'unlimited'

export interface Limits { per_minute: number; monthly: number | null }

export interface KeySpec {
  name: string
  environment: 'live' | 'test'
  /** Empty or absent: every scope. */
  scopes?: Scope[]
  /** Unix seconds. */
  expiresAt?: number
  limits?: Tier | Limits
}

export interface KeyRecord {
  id: number
  lineage_id: number
  name: string
  env: 'live' | 'test'
  scopes: 'all' | Scope[]
  limits: Limits
  created_at: number
  last_used_at: number | null
  expires_at: number | null
  revoked_at: number | null
  replaced_by: number | null
  preview: string
  status: 'active' | 'rotating' | 'expired' | 'revoked'
}

export interface CreatedKey {
  /** The plaintext key: shown once, never stored. */
  key: string
  record: KeyRecord
}

export interface UsageCounts { requests: number; by_scope: Partial<Record<Scope, number>> }

export interface KeyUsage {
  key_id: number
  last_used_at: number | null
  daily: Record<string, UsageCounts>
  monthly: Record<string, UsageCounts>
}

/** Node's `req.headers` shape, or `[name, value]` pairs. */
export type Headers = Record<string, string | string[] | undefined> | Array<[string, string]>

export type Operation =
  | 'embed' | 'colors' | 'silhouette' | 'attributes' | 'catalog'
  | { batch: Scope[] }

export interface RateHeaders {
  limit: number
  remaining: number
  reset: number
  monthly_limit: number | null
  monthly_remaining: number | null
}

export type RateDecision =
  | { decision: 'allowed'; headers: RateHeaders }
  | { decision: 'rate_limited'; retry_after_secs: number; headers: RateHeaders }
  | {
      decision: 'quota_exceeded'
      used: number
      limit: number
      resets_at: number
      retry_after_secs: number
      headers: RateHeaders
    }

export interface PrincipalJson {
  key_id: number
  lineage_id: number
  env: 'live' | 'test'
  scopes: 'all' | Scope[]
  limits: Limits
}


/** Where the LibTorch this process uses was found (`require('dupify').libtorch`). */
export interface LibTorchInfo {
  /** The LibTorch directory (an unpacked LibTorch or a Python `torch` package). */
  dir: string
  /** Its `lib/` directory, whose libraries were loaded. */
  lib: string
  /** The version it declares (`build-version` or `version.py`), when it declares one. */
  version: string | null
  /** `DUPIFY_LIBTORCH`, `python (<command>)` or `next to the package`. */
  source: string
  /** The libraries loaded, in order. */
  libraries: string[]
}

/** Where the LibTorch this process uses was found. */
export declare const libtorch: LibTorchInfo

/**
 * A cancellation flag for `extractBatch` and `Catalog.ingest`: items not started when
 * `cancel()` is called finish with a `cancelled` error.
 */
export declare class CancelToken {
  /** A fresh, not-cancelled token. */
  constructor()
  /** Requests cancellation. */
  cancel(): void
  /** Whether cancellation was requested. */
  get isCancelled(): boolean
}

/** The product catalog: durable products with features, and dupe search. */
export declare class Catalog {
  /**
   * Opens (or creates) the catalog database at `path`; ANN graphs live in `<path>.ann/`.
   * Async: opening reconciles or rebuilds the indexes.
   */
  static open(path: string, options?: CatalogOptions): Promise<Catalog>
  /** An in-memory catalog (tests, ephemeral use). Synchronous: nothing to load. */
  static openInMemory(options?: CatalogOptions): Catalog
  /** Inserts or replaces (by `external_id`) one product. */
  upsert(namespace: Namespace, product: NewProduct): Promise<Product>
  /** Inserts or replaces many products in one transaction (all or nothing). */
  upsertBatch(namespace: Namespace, products: NewProduct[]): Promise<Product[]>
  /** Deletes a product by id (`not_found` when it does not exist). */
  delete(namespace: Namespace, id: string): Promise<void>
  /** A product by catalog id (`not_found` when absent). */
  get(namespace: Namespace, id: string): Promise<Product>
  /** A product by the caller's external id (`not_found` when absent). */
  getByExternalId(namespace: Namespace, externalId: string): Promise<Product>
  /**
   * One page of products matching `filter` (keyset pagination: pass `next_cursor` back as
   * `page.cursor`).
   */
  list(namespace: Namespace, page?: Page, filter?: ProductFilter): Promise<ListPage>
  /**
   * Similarity search by embedding, by a stored product (`by_product`: its dupes), or by
   * shape/colours, with filters and a per-channel score breakdown.
   */
  search(namespace: Namespace, query: SearchQuery): Promise<SearchHit[]>
  /** Number of products in the namespace matching `filter`. */
  count(namespace: Namespace, filter?: ProductFilter): Promise<number>
  /**
   * Searches with the features of a query image (embedding, shape, colours) extracted by
   * `extractor`; `query` adds filters, weights, paging (its channels are replaced).
   */
  searchImage(namespace: Namespace, extractor: Extractor, image: ImageInput, query?: SearchQuery): Promise<SearchHit[]>
  /** Text→image search through the CLIP text tower (`"red floral summer dress"`). */
  searchText(namespace: Namespace, extractor: Extractor, text: string, query?: SearchQuery): Promise<SearchHit[]>
  /**
   * Bulk ingest: extracts each item's image features with `extractor` (batched) and
   * upserts the products. Items already stored with the same image are skipped (resume);
   * per-item failures are reported, never abort the run.
   */
  ingest(namespace: Namespace, extractor: Extractor, items: IngestItem[], options?: BatchOptions): Promise<IngestReport>
  /** Saves the ANN graphs next to the database (also done when the catalog is dropped). */
  flush(): Promise<void>
  /** State of every namespace's index (mode, source, live points, tombstones). */
  indexReport(): Promise<IndexReport[]>
}

/**
 * The extraction pipeline (CLIP embeddings, colours, silhouette, cut-out, attributes,
 * quality), shared by every call. The model loads lazily on the first call that needs it.
 */
export declare class Extractor {
  /**
   * Builds an extractor. Cheap: no model is loaded until a call needs it (or `warmUp`).
   * Throws `invalid_parameter` for bad options and `model_error` for a missing model
   * directory.
   */
  constructor(options?: ExtractorOptions)
  /** Loads the CLIP model and attribute heads now instead of on first use. */
  warmUp(): Promise<void>
  /** Content hash of the loaded model (loads it if needed): the `model` field of results. */
  modelId(): Promise<string>
  /**
   * What the loaded model is (loads it if needed): architecture (`clip` or
   * `efficientnet_lite`), name, content hash, dimensions, image size, text tower.
   */
  modelInfo(): Promise<ModelInfo>
  /** Dimension of image embeddings (loads the model if needed). */
  embedDim(): Promise<number>
  /** CLIP text embedding (L2-normalised), for text→image search. */
  embedText(text: string): Promise<Float32Array>
  /** CLIP text embeddings of several texts, in order. */
  embedTexts(texts: string[]): Promise<Float32Array[]>
  /** Runs `ops` (`"embed,colors"`, `["embed", "colors"]` or `"all"`) on one image. */
  extract(image: ImageInput, ops: Ops): Promise<Features>
  /**
   * Runs `ops` on every image, batched. Resolves to one entry per image, in order: its
   * `Features`, or an `Error` (with `.code`) for an image that failed. Rejects only for
   * problems of the whole call (no operation, model unavailable).
   */
  extractBatch(images: ImageInput[], ops: Ops, options?: BatchOptions): Promise<Array<Features | DupifyError>>
}

/** The API-key store: hashed keys, scopes, usage, rate limits and quotas. */
export declare class KeyStore {
  /**
   * Opens (or creates) the keys database at `path`. `pepper` (non-empty string or bytes)
   * is the server-side secret the keys are hashed with: keep it out of the database.
   */
  static open(path: string, pepper: string | Uint8Array, options?: KeyStoreOptions): Promise<KeyStore>
  /** An in-memory store (tests, ephemeral use). */
  static openInMemory(pepper: string | Uint8Array, options?: KeyStoreOptions): KeyStore
  /** Creates a key. The plaintext `key` is in the result once and never again. */
  create(spec: KeySpec): Promise<CreatedKey>
  /** Every key's record (nothing secret). */
  list(): Promise<KeyRecord[]>
  /** One key's record (`not_found` when absent). */
  get(id: number): Promise<KeyRecord>
  /** Revokes a key, immediately. */
  revoke(id: number): Promise<void>
  /**
   * Issues a new secret for the key (same name, scopes, limits, expiry) and revokes the
   * old one now, or after `graceSecs`.
   */
  regenerate(id: number, graceSecs?: number): Promise<CreatedKey>
  /** Replaces a key's limits: a tier name or `{ per_minute, monthly }`. */
  setLimits(id: number, limits: Tier | Limits): Promise<void>
  /** Usage per UTC day and month, including counts not yet flushed. */
  usage(id: number): Promise<KeyUsage>
  /** Writes buffered usage to the database now. */
  flush(): Promise<void>
  /**
   * For a graceful stop: writes buffered usage and hands back the monthly-quota calls this
   * process reserved but did not spend. The store stays usable.
   */
  shutdown(): Promise<void>
  /**
   * Authenticates a request from its headers (`X-API-Key` or `Authorization: Bearer`).
   * Throws `missing_api_key`, `invalid_api_key` or `expired_api_key`.
   */
  authenticate(headers: Headers): Principal
  /** Verifies a bare key string (already taken out of the request). */
  verify(key: string): Principal
  /**
   * Checks that the principal may run `operation` (a batch needs `batch` plus the scope of
   * every operation in it) and counts the call. Throws `insufficient_scope`.
   */
  authorize(principal: Principal, operation: Operation): void
  /**
   * Applies the per-minute rate limit and the monthly quota to one request and returns
   * the decision with the rate-limit header values (`decision`: `allowed`,
   * `rate_limited` or `quota_exceeded`). An allowed request is counted.
   */
  checkRate(principal: Principal): RateDecision
  /**
   * Gives back the call the last allowed `checkRate` counted, for a request refused before
   * any work (a malformed body): it then counts against neither the monthly quota nor the
   * usage, but keeps its place in the per-minute window.
   */
  release(principal: Principal): void
  /**
   * `checkRate`, throwing `rate_limit_exceeded` / `quota_exceeded` (with `.retryAfterSecs`)
   * when denied; returns the header values when allowed.
   */
  enforceRate(principal: Principal): RateHeaders
}

/**
 * An authenticated caller, as returned by `authenticate`/`verify`; pass it back to
 * `authorize` and `checkRate`.
 */
export declare class Principal {
  /** The key's id. */
  get keyId(): number
  /** The key's regeneration chain (rate and quota are counted per lineage). */
  get lineageId(): number
  /** `'live'` or `'test'`: which catalog namespace the caller may touch. */
  get environment(): 'live' | 'test'
  /** The principal as the core's JSON (`key_id`, `lineage_id`, `env`, `scopes`, `limits`). */
  toJSON(): PrincipalJson
}

/** The device `auto` resolves to in this process (`cpu` or `cuda:N`). */
export declare function autoDevice(): string

/**
 * The default model directory under `root` (default: the working directory), as the CLI and
 * server choose it: a real CLIP in `weights/real/clip-vit-base-patch32`, else the pretrained
 * EfficientNet-Lite2 the project's setup installs; `null` when neither is there.
 */
export declare function defaultModelDir(root?: string | undefined | null): string | null

/** What LibTorch sees in this process: CUDA availability, device count, `auto`'s choice. */
export declare function deviceReport(): DeviceReport

/**
 * Every hosted error code with its HTTP status and meaning, from the one table of the Rust
 * crates (`dupify_core::ERROR_CODES`): `Error.code` is always one of these.
 */
export declare function errorCodes(): ErrorCodeInfo[]

/**
 * `[name, value]` pairs of the rate-limit response headers for a `checkRate` result's
 * `headers` (the `X-Monthly-*` pair only for capped keys).
 */
export declare function rateLimitHeaderPairs(headers: RateHeaders): Array<[string, string]>
