//! Route handlers. Each one: gate (auth + rate), check the route's scope (before the body is
//! read, except `/v1/batch`, whose scopes are in its body), read and parse the body, run the
//! library call on the blocking pool, answer with the rate headers.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dupify_core::catalog::{NewProduct, Page, ProductFeatures, ProductFilter, SearchQuery};
use dupify_core::input::MinDecodedSize;
use dupify_core::ErrorCode;
use dupify_core::{Features, ImageInput, Ops};
use dupify_keys::{Operation, Scope};
use serde_json::{json, Value};

use super::error::ApiError;
use super::types::{
    b64, parse_body, AttributesResponse, BackgroundRemoveResponse, BatchItem, BatchOperation,
    BatchRequest, BatchResponse, ColorsResponse, CreateProduct, EmbedRequest, EmbedResponse,
    ImageRequest, ImageSource, ListQuery, ProductList, ProductUpload, ProductUploadItem,
    ProductUploadResponse, ProductView, ProductWritten, SearchRequest, SearchResponse,
    SearchResult, SilhouetteRequest, SilhouetteResponse,
};
use super::{blocking, AppState};

/// Opens the gate or returns the error response. The request body is not read for a caller
/// that failed authentication or the rate limit, so the connection is closed after the answer
/// (`Connection: close`): a client reusing it would otherwise race the server's close.
macro_rules! gate {
    ($s:expr, $headers:expr) => {
        match $s.gate(&$headers).await {
            Ok(g) => g,
            Err(e) => return close_after(e.into_response()),
        }
    };
}

fn close_after(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    resp
}

/// Reads the body up to the configured limit within the configured time. A body over the
/// limit (announced or streamed) is `payload_too_large` (413); one not complete in time is
/// `request_timeout` (408), so a client trickling bytes cannot hold a connection for ever;
/// the only other read failure is a client that went away, for which no answer is read.
async fn read_body(s: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = s.config().max_body_bytes;
    let deadline = s.config().body_timeout;
    let read = tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(ApiError::close_connection(
            ApiError::new(
                ErrorCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    deadline.as_secs_f64()
                ),
            )
            .with_details(json!({ "timeout_secs": deadline.as_secs_f64() })),
        ));
    };
    read.map_err(|_| {
        ApiError::close_connection(
            ApiError::new(
                ErrorCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            )
            .with_details(json!({ "limit": limit })),
        )
    })
}

/// Runs `ops` on one image on the blocking pool.
async fn extract_one(s: &AppState, input: ImageInput, ops: Ops) -> Result<Features, ApiError> {
    let x = s.extractor().clone();
    blocking(move || Ok(x.extract(&input, ops)?)).await
}

/// Features the catalog stores. Attributes are added when the extractor has attribute heads;
/// an extractor without them still indexes embeddings, colours and shape.
pub(crate) fn catalog_features(
    x: &dupify_core::Extractor,
    input: &ImageInput,
) -> dupify_core::Result<Features> {
    let full = Ops {
        embed: true,
        colors: true,
        silhouette: true,
        attributes: true,
        ..Ops::default()
    };
    match x.extract(input, full) {
        Err(dupify_core::Error::NotAvailable { .. }) => x.extract(
            input,
            Ops {
                attributes: false,
                ..full
            },
        ),
        other => other,
    }
}

fn ok_json<T: serde::Serialize>(v: T) -> Result<Response, ApiError> {
    Ok(Json(v).into_response())
}

/// A single-image request body: the image plus the endpoint's own flags.
pub(crate) trait ImageBody: serde::de::DeserializeOwned {
    fn image(&self) -> &ImageSource;
}

impl ImageBody for EmbedRequest {
    fn image(&self) -> &ImageSource {
        &self.image
    }
}
impl ImageBody for SilhouetteRequest {
    fn image(&self) -> &ImageSource {
        &self.image
    }
}
impl ImageBody for ImageRequest {
    fn image(&self) -> &ImageSource {
        &self.image
    }
}

/// What every single-image endpoint does, once: gate (auth + rate); the route's scope checked
/// before the body is read or parsed (a key without it never gets its body parsed, and the
/// connection closes since the body was left unread); the body read and parsed as `R`; one
/// extraction with the operations `ops` asks for, on the blocking pool; `answer` turns the
/// features into the endpoint's JSON; the rate headers on every answer.
async fn image_endpoint<R: ImageBody>(
    s: AppState,
    headers: HeaderMap,
    body: Body,
    scope: Operation,
    ops: impl FnOnce(&R) -> Ops,
    answer: impl FnOnce(Features) -> Result<Response, ApiError>,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(scope).map_err(ApiError::close_connection)?;
        let req: R = parse_body(&read_body(&s, body).await?)?;
        let ops = ops(&req);
        let input = s.fetch_input(&gate.who, req.image().to_input()?).await?;
        let f = extract_one(&s, input, ops).await?;
        answer(f)
    }
    .await;
    gate.finish(r)
}

/// The part of the features an endpoint asked for, or `internal_error` when the extractor
/// did not return it (a bug, never the caller's fault).
fn asked<T>(part: Option<T>, what: &str) -> Result<T, ApiError> {
    part.ok_or_else(|| ApiError::internal(format!("{what} requested but not returned")))
}

/// `POST /v1/embed`.
#[utoipa::path(post, path = "/v1/embed", tag = "extraction",
    request_body(content = EmbedRequest, example = json!({"image_url": "https://shop.example/images/dress.jpg", "include_quality": true})),
    responses((status = 200, description = "The image's CLIP embedding", body = EmbedResponse)))]
pub(crate) async fn embed(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let ops = |r: &EmbedRequest| Ops {
        embed: true,
        quality: r.include_quality,
        ..Ops::default()
    };
    image_endpoint(s, headers, body, Operation::Embed, ops, |f| {
        let embedding = asked(f.embedding, "embedding")?;
        ok_json(EmbedResponse {
            dimensions: embedding.len(),
            embedding,
            model: f.model_id,
            width: f.width,
            height: f.height,
            processing_time_ms: f.processing_time_ms,
            quality: f.quality,
        })
    })
    .await
}

/// `POST /v1/colors`.
#[utoipa::path(post, path = "/v1/colors", tag = "extraction", request_body = ImageRequest,
    responses((status = 200, description = "The product's dominant colours and the background's", body = ColorsResponse)))]
pub(crate) async fn colors(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let ops = |_: &ImageRequest| Ops {
        colors: true,
        ..Ops::default()
    };
    image_endpoint(s, headers, body, Operation::Colors, ops, |f| {
        ok_json(ColorsResponse {
            report: asked(f.colors, "colors")?,
            width: f.width,
            height: f.height,
            processing_time_ms: f.processing_time_ms,
        })
    })
    .await
}

/// `POST /v1/silhouette`.
#[utoipa::path(post, path = "/v1/silhouette", tag = "extraction", request_body = SilhouetteRequest,
    responses((status = 200, description = "The product's outline: box, area, shape embedding", body = SilhouetteResponse)))]
pub(crate) async fn silhouette(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ops = |r: &SilhouetteRequest| Ops {
        silhouette: true,
        cutout: r.include_cutout,
        ..Ops::default()
    };
    image_endpoint(s, headers, body, Operation::Silhouette, ops, |f| {
        let sil = asked(f.silhouette, "silhouette")?;
        ok_json(SilhouetteResponse {
            bbox: sil.bbox,
            area_fraction: sil.area_fraction,
            confidence: sil.confidence,
            foreground: sil.foreground,
            dimensions: sil.embedding.len(),
            embedding: sil.embedding,
            width: f.width,
            height: f.height,
            processing_time_ms: f.processing_time_ms,
            cutout_base64: f.cutout_png.as_deref().map(b64),
        })
    })
    .await
}

/// `POST /v1/attributes`.
#[utoipa::path(post, path = "/v1/attributes", tag = "extraction", request_body = ImageRequest,
    responses((status = 200, description = "Category and the attributes that apply to it", body = AttributesResponse)))]
pub(crate) async fn attributes(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ops = |_: &ImageRequest| Ops {
        attributes: true,
        ..Ops::default()
    };
    image_endpoint(s, headers, body, Operation::Attributes, ops, |f| {
        ok_json(AttributesResponse {
            report: asked(f.attributes, "attributes")?,
            model: f.model_id,
            processing_time_ms: f.processing_time_ms,
        })
    })
    .await
}

/// `POST /v1/background-remove`: the product on a transparent background, as a PNG.
#[utoipa::path(post, path = "/v1/background-remove", tag = "extraction", request_body = ImageRequest,
    responses((status = 200, description = "The product on a transparent background: JSON with the PNG as base64, or with `Accept: image/png` the PNG itself",
        content((BackgroundRemoveResponse = "application/json"), (Vec<u8> = "image/png")))))]
pub(crate) async fn background_remove(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // `Accept: image/png` asks for the PNG itself instead of the JSON with its base64.
    let wants_png = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("image/png")));
    let ops = |_: &ImageRequest| Ops {
        cutout: true,
        ..Ops::default()
    };
    image_endpoint(s, headers, body, Operation::Silhouette, ops, move |f| {
        let png = asked(f.cutout_png, "cut-out")?;
        if wants_png {
            return Ok(([(axum::http::header::CONTENT_TYPE, "image/png")], png).into_response());
        }
        ok_json(BackgroundRemoveResponse {
            image_base64: b64(&png),
            format: "png",
            width: f.width,
            height: f.height,
            processing_time_ms: f.processing_time_ms,
        })
    })
    .await
}

/// `POST /v1/batch`: `operations` over up to `max_batch_images` `images`. The key needs
/// `batch` and the scope of every operation. One bad image gives that item an error; the
/// batch still answers 200.
#[utoipa::path(post, path = "/v1/batch", tag = "extraction", request_body = BatchRequest,
    responses((status = 200, description = "A result or an error per image", body = BatchResponse)))]
pub(crate) async fn batch(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        let req: BatchRequest = parse_body(&read_body(&s, body).await?)?;
        if req.images.is_empty() {
            return Err(ApiError::missing("images"));
        }
        let max = s.config().max_batch_images;
        if req.images.len() > max {
            return Err(ApiError::invalid(
                "images",
                format!("at most {max} images per batch, got {}", req.images.len()),
            )
            .with_details(
                json!({ "parameter": "images", "max": max, "count": req.images.len() }),
            ));
        }
        if req.operations.is_empty() {
            return Err(ApiError::missing("operations"));
        }
        let scopes: Vec<Scope> = req.operations.iter().map(|o| o.scope()).collect();
        gate.authorize(Operation::batch(scopes))?;
        let ops = BatchOperation::ops(&req.operations)?;

        // Items whose image field is itself wrong get their error without reaching the
        // extractor; the others run as one batch.
        // URLs are fetched one after another, each under the fetch caps, before any work.
        let mut parsed: Vec<Result<ImageInput, ApiError>> = Vec::with_capacity(req.images.len());
        for item in &req.images {
            parsed.push(match item.image.to_input() {
                Ok(input) => s.fetch_input(&gate.who, input).await,
                Err(e) => Err(e),
            });
        }
        let inputs: Vec<ImageInput> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
        let x = s.extractor().clone();
        let extracted = blocking(move || {
            Ok(x.extract_batch(&inputs, ops, &dupify_core::BatchOptions::default())?)
        })
        .await?;
        let mut extracted = extracted.into_iter();
        let mut results = Vec::with_capacity(req.images.len());
        let (mut ok, mut failed) = (0usize, 0usize);
        for (index, (item, p)) in req.images.iter().zip(parsed).enumerate() {
            let outcome: Result<Features, ApiError> = match p {
                Err(e) => Err(e),
                Ok(_) => match extracted.next() {
                    Some(r) => r.map_err(ApiError::from),
                    None => Err(ApiError::internal("batch returned fewer items than sent")),
                },
            };
            let (result, error) = match outcome {
                Ok(f) => {
                    ok += 1;
                    (Some(f.into()), None)
                }
                Err(e) => {
                    failed += 1;
                    (None, Some(e.body()))
                }
            };
            results.push(BatchItem {
                index,
                id: item.id.clone(),
                ok: result.is_some(),
                result,
                error,
            });
        }
        ok_json(BatchResponse {
            results,
            succeeded: ok,
            failed,
        })
    }
    .await;
    gate.finish(r)
}

/// `POST /v1/catalog/products`: stores (or replaces, matched by `external_id`) a product
/// with the features of its image: 201 when new, 200 when replaced. With a body
/// `{"products": [...]}` (at most `ServeConfig::max_batch_products`), stores each one and
/// answers 200 with a result per item (`ok` and the product, or `error`): one bad item does
/// not stop the others.
#[utoipa::path(post, path = "/v1/catalog/products", tag = "catalog", request_body = ProductUpload,
    responses(
        (status = 201, description = "A new product, with the features of its `image_base64`", body = ProductView),
        (status = 202, description = "Stored from its `image_url`, `embedding_status` `processing`: the image is fetched and its features extracted in the background (poll the product: `ready` or `failed` with `embedding_error`)", body = ProductView),
        (status = 200, description = "A product that replaced the one with its `external_id`, or a batch upload's result per item", body = ProductWritten)))]
pub(crate) async fn create_product(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)
            .map_err(ApiError::close_connection)?;
        let body: Value = parse_body(&read_body(&s, body).await?)?;
        let Some(items) = body.get("products") else {
            let req: CreateProduct = serde_json::from_value(body)
                .map_err(|e| ApiError::invalid("body", e.to_string()))?;
            let (product, stored) = store_product(&s, &gate.who, req).await?;
            let status = match stored {
                Stored::Created => StatusCode::CREATED,
                Stored::Replaced => StatusCode::OK,
                Stored::Queued => StatusCode::ACCEPTED,
            };
            let view = ProductWritten::One(Box::new(ProductView::from(product)));
            return Ok((status, Json(view)).into_response());
        };
        let Value::Array(items) = items else {
            return Err(ApiError::invalid(
                "products",
                "must be an array of products",
            ));
        };
        let max = s.config().max_batch_products;
        if items.is_empty() || items.len() > max {
            return Err(ApiError::invalid(
                "products",
                format!("send 1 to {max} products, got {}", items.len()),
            )
            .with_details(json!({ "parameter": "products", "max": max, "count": items.len() })));
        }
        let mut results = Vec::with_capacity(items.len());
        let (mut ok, mut failed) = (0usize, 0usize);
        for (index, item) in items.iter().enumerate() {
            let outcome = match serde_json::from_value::<CreateProduct>(item.clone()) {
                Ok(req) => store_product(&s, &gate.who, req).await,
                Err(e) => Err(ApiError::invalid(
                    &format!("products[{index}]"),
                    e.to_string(),
                )),
            };
            results.push(match outcome {
                Ok((product, stored)) => {
                    ok += 1;
                    ProductUploadItem {
                        index,
                        ok: true,
                        created: Some(stored == Stored::Created),
                        product: Some(ProductView::from(product)),
                        error: None,
                    }
                }
                Err(e) => {
                    failed += 1;
                    ProductUploadItem {
                        index,
                        ok: false,
                        created: None,
                        product: None,
                        error: Some(e.body()),
                    }
                }
            });
        }
        ok_json(ProductWritten::Many(ProductUploadResponse {
            results,
            succeeded: ok,
            failed,
        }))
    }
    .await;
    gate.finish(r)
}

/// How an upload was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// A new product, with its features.
    Created,
    /// Replaced the product with its `external_id`, with its features.
    Replaced,
    /// Stored at once from its `image_url`; its features come from the queue's worker.
    Queued,
}

/// Stores one product. From `image_base64`, with the features of its image (and a
/// thumbnail); from `image_url`, queued: stored at once, the URL checked but not fetched,
/// the fetch and extraction left to the catalog queue's worker (see `worker.rs`).
async fn store_product(
    s: &AppState,
    who: &dupify_keys::Principal,
    req: CreateProduct,
) -> Result<(dupify_core::catalog::Product, Stored), ApiError> {
    let external_id = req
        .external_id
        .clone()
        .ok_or_else(|| ApiError::missing("external_id"))?;
    let input = req.image.to_input()?;
    let ns = s.namespace(who)?;
    let mut p = NewProduct::new(external_id.clone());
    p.title = req.title;
    p.sku = req.sku;
    p.description = req.description;
    p.brand = req.brand;
    p.category = req.category;
    p.price = req.price;
    p.currency = req.currency;
    p.product_url = req.product_url;
    p.image_url = req.image.image_url;
    if let Some(m) = req.metadata {
        p.metadata = m;
    }
    if let ImageInput::Url(url) = &input {
        dupify_core::input::check_image_url(url)?;
        let st = s.clone();
        let queued = blocking(move || Ok(st.catalog().enqueue(&ns, p)?)).await?;
        s.wake_worker();
        return Ok((queued, Stored::Queued));
    }
    let st = s.clone();
    blocking(move || {
        let f = catalog_features(st.extractor(), &input)?;
        let thumb = match &st.config().thumbnails_dir {
            // A thumbnail needs only its own size from a large JPEG.
            Some(_) => Some(
                dupify_core::input::decode_reduced(
                    &input,
                    &st.extractor().config().limits,
                    MinDecodedSize::long_side(THUMBNAIL_SIDE),
                )?
                .thumbnail_jpeg(THUMBNAIL_SIDE, 80)?,
            ),
            None => None,
        };
        let existed = st.catalog().get_by_external_id(&ns, &external_id).is_ok();
        p.image_hash = Some(f.content_hash.clone());
        p.features = ProductFeatures::from(&f);
        let saved = st.catalog().upsert(&ns, p)?;
        if let (Some(dir), Some(jpeg)) = (&st.config().thumbnails_dir, thumb) {
            write_thumbnail(dir, &saved.id, &jpeg)?;
        }
        let stored = if existed {
            Stored::Replaced
        } else {
            Stored::Created
        };
        Ok((saved, stored))
    })
    .await
}

/// `GET /v1/catalog/products`: one page of the caller's environment's products.
#[utoipa::path(get, path = "/v1/catalog/products", tag = "catalog", params(ListQuery),
    responses((status = 200, description = "One page of products", body = ProductList)))]
pub(crate) async fn list_products(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)?;
        let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let ns = s.namespace(&gate.who)?;
        let page = Page {
            limit: q.limit.unwrap_or(0),
            cursor: q.cursor,
        };
        let filter = ProductFilter {
            category: q.category,
            brand: q.brand,
            min_price: q.min_price,
            max_price: q.max_price,
            currency: q.currency,
            ..ProductFilter::default()
        };
        let st = s.clone();
        let (listed, total) = blocking(move || {
            let cat = st.catalog();
            Ok((cat.list(&ns, &page, &filter)?, cat.count(&ns, &filter)?))
        })
        .await?;
        let items: Vec<ProductView> = listed.items.into_iter().map(ProductView::from).collect();
        ok_json(ProductList {
            items,
            next_cursor: listed.next_cursor,
            total,
        })
    }
    .await;
    gate.finish(r)
}

/// `GET /v1/catalog/products/{id}`.
#[utoipa::path(get, path = "/v1/catalog/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The product id (not the external id)")),
    responses((status = 200, description = "The product", body = ProductView)))]
pub(crate) async fn get_product(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)?;
        let ns = s.namespace(&gate.who)?;
        let st = s.clone();
        let p = blocking(move || Ok(st.catalog().get(&ns, &id)?)).await?;
        ok_json(ProductView::from(p))
    }
    .await;
    gate.finish(r)
}

/// `DELETE /v1/catalog/products/{id}`: 204 on success.
#[utoipa::path(delete, path = "/v1/catalog/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "The product id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete_product(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)?;
        let ns = s.namespace(&gate.who)?;
        let st = s.clone();
        blocking(move || {
            st.catalog().delete(&ns, &id)?;
            if let Some(dir) = &st.config().thumbnails_dir {
                // Best effort: a leftover file is unreachable (the product is gone).
                let _ = std::fs::remove_file(thumbnail_path(dir, &id)?);
            }
            Ok(())
        })
        .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    gate.finish(r)
}

/// Long side of stored product thumbnails, in pixels.
const THUMBNAIL_SIDE: u32 = 256;

/// `<dir>/<id>.jpg` for a catalog product id (a UUID: refused if it is anything else, so an
/// id can never name a path outside `dir`).
fn thumbnail_path(dir: &std::path::Path, id: &str) -> Result<std::path::PathBuf, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(ApiError::invalid("id", "not a product id"));
    }
    Ok(dir.join(format!("{id}.jpg")))
}

/// Writes a thumbnail atomically (temp file + rename), so a reader never sees half a JPEG.
fn write_thumbnail(dir: &std::path::Path, id: &str, jpeg: &[u8]) -> Result<(), ApiError> {
    let path = thumbnail_path(dir, id)?;
    let tmp = path.with_extension("jpg.tmp");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, jpeg))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| ApiError::internal(format!("storing the thumbnail: {e}")))
}

/// `GET /v1/catalog/products/{id}/thumbnail`: the product's 256-px JPEG thumbnail (made from
/// the uploaded image), for the caller's environment only; `not_found` when the product is not
/// there or was stored from an `image_url` (show that URL instead).
#[utoipa::path(get, path = "/v1/catalog/products/{id}/thumbnail", tag = "catalog",
    params(("id" = String, Path, description = "The product id")),
    responses((status = 200, description = "A 256-px JPEG of the uploaded image", content_type = "image/jpeg", body = Vec<u8>)))]
pub(crate) async fn product_thumbnail(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)?;
        let ns = s.namespace(&gate.who)?;
        let st = s.clone();
        let jpeg = blocking(move || {
            // The product must be in the caller's namespace: the id alone is not enough.
            st.catalog().get(&ns, &id)?;
            let missing = || {
                ApiError::from(dupify_core::Error::NotFound {
                    what: "thumbnail",
                    id: id.clone(),
                })
            };
            let dir = st.config().thumbnails_dir.as_ref().ok_or_else(missing)?;
            std::fs::read(thumbnail_path(dir, &id)?).map_err(|_| missing())
        })
        .await?;
        Ok((
            [(axum::http::header::CONTENT_TYPE, "image/jpeg")],
            Bytes::from(jpeg),
        )
            .into_response())
    }
    .await;
    gate.finish(r)
}

/// `POST /v1/catalog/search`: dupes of an image (embedding + shape + colours,
/// `Catalog::search_image`), of a text (`Catalog::search_text`), of a stored product or of an
/// embedding, with filters and the per-channel score breakdown.
#[utoipa::path(post, path = "/v1/catalog/search", tag = "catalog",
    request_body(content = SearchRequest, example = json!({"product_id": "4f6c2d0e-6a1b-4a52-9a1e-2f0b8c7d9e10", "cheaper_by_percent": 30, "limit": 10})),
    responses((status = 200, description = "Dupes, best first, with per-channel scores", body = SearchResponse)))]
pub(crate) async fn search(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let gate = gate!(s, headers);
    let r = async {
        gate.authorize(Operation::Catalog)
            .map_err(ApiError::close_connection)?;
        let req: SearchRequest = parse_body(&read_body(&s, body).await?)?;
        let kinds = [
            req.image.is_set(),
            req.text.is_some(),
            req.product_id.is_some(),
            req.embedding.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => {
                return Err(ApiError::missing("image_base64").with_details(json!({
                    "parameter": "image_base64",
                    "alternatives": ["image_url", "text", "product_id", "embedding"],
                })))
            }
            1 => {}
            _ => {
                return Err(ApiError::invalid(
                    "query",
                    "send exactly one of an image, `text`, `product_id` or `embedding`",
                ))
            }
        }
        // These compare against the query product: name the request's own field.
        if req.product_id.is_none() {
            if req.cheaper_by_percent.is_some() {
                return Err(ApiError::invalid(
                    "cheaper_by_percent",
                    "needs `product_id`: it keeps products that much cheaper than that product",
                ));
            }
            if req.exclude_own_brand {
                return Err(ApiError::invalid(
                    "exclude_own_brand",
                    "needs `product_id`: it drops that product's brand",
                ));
            }
        }
        let ns = s.namespace(&gate.who)?;
        let filter = ProductFilter {
            category: req.filter.category,
            brand: req.filter.brand,
            min_price: req.filter.min_price,
            max_price: req.filter.max_price,
            currency: req.filter.currency,
            exclude_brands: req.filter.exclude_brands,
            ..ProductFilter::default()
        };
        let q = SearchQuery {
            by_product: req.product_id,
            exclude_own_brand: req.exclude_own_brand,
            min_score: req.min_score,
            embedding: req.embedding,
            filter,
            cheaper_by_percent: req.cheaper_by_percent,
            weights: req.weights,
            limit: req.limit.unwrap_or(0),
            offset: req.offset.unwrap_or(0),
            ..SearchQuery::default()
        };
        let image = if req.image.is_set() {
            Some(s.fetch_input(&gate.who, req.image.to_input()?).await?)
        } else {
            None
        };
        let text = req.text;
        let st = s.clone();
        let hits = blocking(move || {
            let (cat, x) = (st.catalog(), st.extractor());
            Ok(match (image, text) {
                (Some(input), _) => cat.search_image(&ns, x, &input, q)?,
                (None, Some(t)) => cat.search_text(&ns, x, &t, q)?,
                (None, None) => cat.search(&ns, &q)?,
            })
        })
        .await?;
        let results: Vec<SearchResult> = hits
            .into_iter()
            .map(|h| SearchResult {
                product: ProductView::from(h.product),
                score: h.score,
                scores: h.scores,
            })
            .collect();
        ok_json(SearchResponse { results })
    }
    .await;
    gate.finish(r)
}
