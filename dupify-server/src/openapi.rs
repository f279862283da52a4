//! The OpenAPI 3.1 document of the v1 API, served at `GET /v1/openapi.json`.
//!
//! Generated, never hand-written: the request and response schemas come from the handlers' own
//! types (`ToSchema` on `types.rs`, and on `dupify-core`'s output types through its `openapi`
//! feature), the operations from `#[utoipa::path]` on each handler. What every `/v1` operation
//! shares is added here once ([`Conventions`]): the two ways to send a key, the error answers
//! grouped by status from the hosted error-code table (so a new code can never be missing from
//! the document), and the rate-limit headers.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, SecurityRequirement};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorEnvelope};
use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dupify API",
        version = "1",
        description = "Product-image features (embeddings, colours, silhouettes, attributes) and a \
            product catalog with dupe search. Every `/v1` operation takes an API key \
            (`X-API-Key: fe_live_…` or `Authorization: Bearer fe_live_…`; `fe_test_` keys see \
            only test data) and answers errors as `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        handlers::embed,
        handlers::colors,
        handlers::silhouette,
        handlers::attributes,
        handlers::background_remove,
        handlers::batch,
        handlers::create_product,
        handlers::list_products,
        handlers::get_product,
        handlers::delete_product,
        handlers::product_thumbnail,
        handlers::search,
        crate::healthz,
    ),
    components(schemas(ErrorEnvelope, ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "extraction", description = "Features of one image, or of a batch"),
        (name = "catalog", description = "Products of the caller's environment, and dupe search"),
        (name = "operations", description = "Probes"),
    )
)]
pub(crate) struct ApiDoc;

/// The shared parts of every `/v1` operation (see the module docs).
struct Conventions;

/// Statuses of the error table that an operation's caller can get. 405 is the router's (no
/// operation answers it), 499 is never sent (the caller went away).
fn error_statuses() -> BTreeMap<u16, Vec<&'static dupify_core::ErrorCode>> {
    let mut by_status: BTreeMap<u16, Vec<_>> = BTreeMap::new();
    for c in dupify_core::ERROR_CODES {
        if c.http_status != 405 && c.http_status != 499 {
            by_status.entry(c.http_status).or_default().push(c);
        }
    }
    by_status
}

fn int_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some(description))
        .build()
}

/// The rate-limit headers every answer to an authenticated caller carries.
const RATE_HEADERS: [(&str, &str); 5] = [
    (
        "X-RateLimit-Limit",
        "Requests allowed in any 60-second window.",
    ),
    (
        "X-RateLimit-Remaining",
        "Requests left in the current window.",
    ),
    (
        "X-RateLimit-Reset",
        "Unix seconds when the whole allowance is free again.",
    ),
    (
        "X-Monthly-Limit",
        "Calls a month (keys with a monthly quota only).",
    ),
    (
        "X-Monthly-Remaining",
        "Calls left this month (keys with a monthly quota only).",
    ),
];

fn error_response(status: u16, codes: &[&dupify_core::ErrorCode]) -> Response {
    let mut text = String::from("Errors answered with this status:\n");
    for c in codes {
        text.push_str(&format!("- `{}`: {}\n", c.code, c.meaning));
    }
    let mut b = ResponseBuilder::new().description(text).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
            .build(),
    );
    for (name, what) in RATE_HEADERS {
        b = b.header(name, int_header(what));
    }
    if status == 429 || status == 403 {
        b = b.header(
            "Retry-After",
            int_header("Seconds to wait (rate limit: until the window frees a call; quota: until the month resets)."),
        );
    }
    b.build()
}

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An `fe_live_…` or `fe_test_…` key.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The same key as `Authorization: Bearer fe_live_…`."))
                    .build(),
            ),
        );
        let errors = error_statuses();
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                op.security = Some(vec![
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
                for (_, resp) in op.responses.responses.iter_mut() {
                    if let RefOr::T(r) = resp {
                        for (name, what) in RATE_HEADERS {
                            r.headers.insert(name.to_string(), int_header(what));
                        }
                    }
                }
                for (status, codes) in &errors {
                    op.responses
                        .responses
                        .insert(status.to_string(), RefOr::T(error_response(*status, codes)));
                }
            }
        }
    }
}

/// The document as JSON (what `GET /v1/openapi.json` answers).
///
/// Links are added to the JSON rather than through utoipa's `Link`, which serialises its
/// fields in snake case (`operation_id`) where OpenAPI names them in camel case.
pub(crate) fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    // A product's id, as the upload answers it, feeds the per-product operations, so tools
    // that follow links (Schemathesis's stateful phase) can chain them.
    let links = serde_json::json!({
        "GetProduct": { "operationId": "get_product", "parameters": { "id": "$response.body#/id" } },
        "ProductThumbnail": { "operationId": "product_thumbnail", "parameters": { "id": "$response.body#/id" } },
        "DeleteProduct": { "operationId": "delete_product", "parameters": { "id": "$response.body#/id" } },
        "SearchDupes": { "operationId": "search", "requestBody": { "product_id": "$response.body#/id" } },
    });
    for status in ["200", "201"] {
        if let Some(r) = doc
            .pointer_mut(&format!(
                "/paths/~1v1~1catalog~1products/post/responses/{status}"
            ))
            .and_then(serde_json::Value::as_object_mut)
        {
            r.insert("links".into(), links.clone());
        }
    }
    doc
}
