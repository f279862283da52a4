//! `Catalog` for JavaScript: argument conversion around [`dupify_core::catalog::Catalog`].
//! Every call touches SQLite or the ANN index, so every call runs on a worker thread.
//!
//! Data objects (namespace, products, filters, queries, pages, results) are the core's JSON
//! (snake_case keys, as the hosted API speaks); embeddings may be given as `Float32Array` or
//! `number[]` and come back as `Float32Array`.

use std::sync::Arc;

use dupify_core::catalog::{
    self as core_catalog, CatalogOptions, IngestItem, IngestOptions, Namespace, NewProduct, Page,
    ProductFilter, SearchQuery,
};
use napi::bindgen_prelude::{AsyncTask, ClassInstance, JsObjectValue, JsValue, Object, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;

use crate::convert::{
    arg, arg_or_default, from_value, is_nullish, snake_case_keys, string_arg, to_json, Js,
};
use crate::error::{sync, ErrInfo, Res};
use crate::extractor::{batch_options, Extractor};
use crate::input;
use crate::task::{Job, Opener};

/// Options of `Catalog.open` / `Catalog.openInMemory`: the core's `CatalogOptions`, written
/// in JavaScript's camelCase (`{ index: { efSearch } }`); fields left out take the core's
/// defaults, unknown ones are refused by the core's type.
fn catalog_options(v: Option<&Unknown<'_>>) -> Res<CatalogOptions> {
    let o: CatalogOptions = match v {
        Some(v) if !is_nullish(v) => {
            from_value(snake_case_keys(to_json(v, "options")?), "options")?
        }
        _ => CatalogOptions::default(),
    };
    o.validate()?;
    Ok(o)
}

/// The product catalog: durable products with features, and dupe search.
#[napi]
pub struct Catalog {
    inner: Arc<core_catalog::Catalog>,
}

/// A validated namespace (`{ account, environment: 'live' | 'test' }`).
fn ns_arg(v: Option<&Unknown<'_>>) -> Res<Namespace> {
    let ns: Namespace = arg(v, "namespace")?;
    Ok(Namespace::new(ns.account, ns.environment)?)
}

/// An array of products, each completed with `NewProduct`'s defaults.
fn products_arg(v: Option<&Unknown<'_>>) -> Res<Vec<NewProduct>> {
    let items: Vec<serde_json::Value> = arg(v, "products")?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, p)| from_value::<NewProduct>(p, &format!("products[{i}]")))
        .collect()
}

/// A product or catalog id argument.
fn id_arg(v: Option<&Unknown<'_>>, name: &str) -> Res<String> {
    string_arg(v, name)
}

#[napi]
impl Catalog {
    /// Opens (or creates) the catalog database at `path`; ANN graphs live in `<path>.ann/`.
    /// Async: opening reconciles or rebuilds the indexes.
    #[napi(
        ts_args_type = "path: string, options?: CatalogOptions",
        ts_return_type = "Promise<Catalog>"
    )]
    pub fn open(path: Option<Unknown>, options: Option<Unknown>) -> AsyncTask<Opener<Catalog>> {
        let args = (|| {
            let path = string_arg(path.as_ref(), "path")?;
            let opts = catalog_options(options.as_ref())?;
            Ok((path, opts))
        })();
        Opener::try_run(args, |(path, opts)| {
            Ok(Catalog {
                inner: Arc::new(core_catalog::Catalog::open(path, opts)?),
            })
        })
    }

    /// An in-memory catalog (tests, ephemeral use). Synchronous: nothing to load.
    #[napi(factory, ts_args_type = "options?: CatalogOptions")]
    pub fn open_in_memory(env: Env, options: Option<Unknown>) -> napi::Result<Catalog> {
        sync(&env, || {
            let opts = catalog_options(options.as_ref())?;
            Ok(Catalog {
                inner: Arc::new(core_catalog::Catalog::open_in_memory(opts)?),
            })
        })
    }

    /// Inserts or replaces (by `external_id`) one product.
    #[napi(
        ts_args_type = "namespace: Namespace, product: NewProduct",
        ts_return_type = "Promise<Product>"
    )]
    pub fn upsert(&self, ns: Option<Unknown>, product: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref())
            .and_then(|ns| Ok((ns, arg::<NewProduct>(product.as_ref(), "product")?)));
        Job::try_run(args, move |(ns, p)| Js::from_serde(&c.upsert(&ns, p)?))
    }

    /// Inserts or replaces many products in one transaction (all or nothing).
    #[napi(
        ts_args_type = "namespace: Namespace, products: NewProduct[]",
        ts_return_type = "Promise<Product[]>"
    )]
    pub fn upsert_batch(&self, ns: Option<Unknown>, products: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref()).and_then(|ns| Ok((ns, products_arg(products.as_ref())?)));
        Job::try_run(args, move |(ns, p)| {
            Js::from_serde(&c.upsert_batch(&ns, p)?)
        })
    }

    /// Deletes a product by id (`not_found` when it does not exist).
    #[napi(
        ts_args_type = "namespace: Namespace, id: string",
        ts_return_type = "Promise<void>"
    )]
    pub fn delete(&self, ns: Option<Unknown>, id: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref()).and_then(|ns| Ok((ns, id_arg(id.as_ref(), "id")?)));
        Job::try_run(args, move |(ns, id)| {
            c.delete(&ns, &id)?;
            Ok(Js::Undefined)
        })
    }

    /// A product by catalog id (`not_found` when absent).
    #[napi(
        ts_args_type = "namespace: Namespace, id: string",
        ts_return_type = "Promise<Product>"
    )]
    pub fn get(&self, ns: Option<Unknown>, id: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref()).and_then(|ns| Ok((ns, id_arg(id.as_ref(), "id")?)));
        Job::try_run(args, move |(ns, id)| Js::from_serde(&c.get(&ns, &id)?))
    }

    /// A product by the caller's external id (`not_found` when absent).
    #[napi(
        ts_args_type = "namespace: Namespace, externalId: string",
        ts_return_type = "Promise<Product>"
    )]
    pub fn get_by_external_id(
        &self,
        ns: Option<Unknown>,
        external_id: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref())
            .and_then(|ns| Ok((ns, id_arg(external_id.as_ref(), "external_id")?)));
        Job::try_run(args, move |(ns, id)| {
            Js::from_serde(&c.get_by_external_id(&ns, &id)?)
        })
    }

    /// One page of products matching `filter` (keyset pagination: pass `next_cursor` back as
    /// `page.cursor`).
    #[napi(
        ts_args_type = "namespace: Namespace, page?: Page, filter?: ProductFilter",
        ts_return_type = "Promise<ListPage>"
    )]
    pub fn list(
        &self,
        ns: Option<Unknown>,
        page: Option<Unknown>,
        filter: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = (|| {
            let ns = ns_arg(ns.as_ref())?;
            let page: Page = arg_or_default(page.as_ref(), "page")?;
            let filter: ProductFilter = arg_or_default(filter.as_ref(), "filter")?;
            Ok((ns, page, filter))
        })();
        Job::try_run(args, move |(ns, page, filter)| {
            Js::from_serde(&c.list(&ns, &page, &filter)?)
        })
    }

    /// Similarity search by embedding, by a stored product (`by_product`: its dupes), or by
    /// shape/colours, with filters and a per-channel score breakdown.
    #[napi(
        ts_args_type = "namespace: Namespace, query: SearchQuery",
        ts_return_type = "Promise<SearchHit[]>"
    )]
    pub fn search(&self, ns: Option<Unknown>, query: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref())
            .and_then(|ns| Ok((ns, arg::<SearchQuery>(query.as_ref(), "query")?)));
        Job::try_run(args, move |(ns, q)| Js::from_serde(&c.search(&ns, &q)?))
    }

    /// Number of products in the namespace matching `filter`.
    #[napi(
        ts_args_type = "namespace: Namespace, filter?: ProductFilter",
        ts_return_type = "Promise<number>"
    )]
    pub fn count(&self, ns: Option<Unknown>, filter: Option<Unknown>) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = ns_arg(ns.as_ref()).and_then(|ns| {
            let f: ProductFilter = arg_or_default(filter.as_ref(), "filter")?;
            Ok((ns, f))
        });
        Job::try_run(args, move |(ns, f)| Ok(Js::Num(c.count(&ns, &f)? as f64)))
    }

    /// Searches with the features of a query image (embedding, shape, colours) extracted by
    /// `extractor`; `query` adds filters, weights, paging (its channels are replaced).
    #[napi(
        ts_args_type = "namespace: Namespace, extractor: Extractor, image: ImageInput, query?: SearchQuery",
        ts_return_type = "Promise<SearchHit[]>"
    )]
    pub fn search_image(
        &self,
        ns: Option<Unknown>,
        extractor: Option<Unknown>,
        image: Option<Unknown>,
        query: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = (|| {
            let ns = ns_arg(ns.as_ref())?;
            let x = extractor_arg(extractor.as_ref())?;
            let image = input::image(image.as_ref(), "image")?;
            let q: SearchQuery = arg_or_default(query.as_ref(), "query")?;
            Ok((ns, x, image, q))
        })();
        Job::try_run(args, move |(ns, x, image, q)| {
            Js::from_serde(&c.search_image(&ns, &x, &image, q)?)
        })
    }

    /// Text→image search through the CLIP text tower (`"red floral summer dress"`).
    #[napi(
        ts_args_type = "namespace: Namespace, extractor: Extractor, text: string, query?: SearchQuery",
        ts_return_type = "Promise<SearchHit[]>"
    )]
    pub fn search_text(
        &self,
        ns: Option<Unknown>,
        extractor: Option<Unknown>,
        text: Option<Unknown>,
        query: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = (|| {
            let ns = ns_arg(ns.as_ref())?;
            let x = extractor_arg(extractor.as_ref())?;
            let text = string_arg(text.as_ref(), "text")?;
            let q: SearchQuery = arg_or_default(query.as_ref(), "query")?;
            Ok((ns, x, text, q))
        })();
        Job::try_run(args, move |(ns, x, text, q)| {
            Js::from_serde(&c.search_text(&ns, &x, &text, q)?)
        })
    }

    /// Bulk ingest: extracts each item's image features with `extractor` (batched) and
    /// upserts the products. Items already stored with the same image are skipped (resume);
    /// per-item failures are reported, never abort the run.
    #[napi(
        ts_args_type = "namespace: Namespace, extractor: Extractor, items: IngestItem[], options?: BatchOptions",
        ts_return_type = "Promise<IngestReport>"
    )]
    pub fn ingest(
        &self,
        ns: Option<Unknown>,
        extractor: Option<Unknown>,
        items: Option<Unknown>,
        options: Option<Unknown>,
    ) -> AsyncTask<Job> {
        let c = self.inner.clone();
        let args = (|| {
            let ns = ns_arg(ns.as_ref())?;
            let x = extractor_arg(extractor.as_ref())?;
            let items = ingest_items(items.as_ref())?;
            let b = batch_options(options.as_ref())?;
            let mut opts = IngestOptions::default().with_cancel(b.cancel.unwrap_or_default());
            opts.progress = b.progress;
            Ok((ns, x, items, opts))
        })();
        Job::try_run(args, move |(ns, x, items, opts)| {
            Js::from_serde(&c.ingest(&ns, &x, items, &opts)?)
        })
    }

    /// Saves the ANN graphs next to the database (also done when the catalog is dropped).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn flush(&self) -> AsyncTask<Job> {
        let c = self.inner.clone();
        Job::run(move || {
            c.flush()?;
            Ok(Js::Undefined)
        })
    }

    /// State of every namespace's index (mode, source, live points, tombstones).
    #[napi(ts_return_type = "Promise<IndexReport[]>")]
    pub fn index_report(&self) -> AsyncTask<Job> {
        let c = self.inner.clone();
        Job::run(move || Js::from_serde(&c.index_report()?))
    }
}

/// `[{ product, image }]` → ingest items (errors name the index).
fn ingest_items(v: Option<&Unknown<'_>>) -> Res<Vec<IngestItem>> {
    let Some(v) = v.filter(|v| !is_nullish(v)) else {
        return Err(ErrInfo::missing("items"));
    };
    if !v.is_array().unwrap_or(false) {
        return Err(ErrInfo::invalid(
            "items",
            "must be an array of { product, image }",
        ));
    }
    let arr: Object = unsafe { v.cast() }.map_err(|e| ErrInfo::invalid("items", e.reason))?;
    let len = arr
        .get_array_length()
        .map_err(|e| ErrInfo::invalid("items", e.reason))?;
    (0..len)
        .map(|i| {
            let name = format!("items[{i}]");
            let item: Unknown = arr
                .get_element(i)
                .map_err(|e| ErrInfo::invalid(&name, e.reason))?;
            if !matches!(item.get_type(), Ok(ValueType::Object)) {
                return Err(ErrInfo::invalid(&name, "must be { product, image }"));
            }
            let obj: Object =
                unsafe { item.cast() }.map_err(|e| ErrInfo::invalid(&name, e.reason))?;
            let get = |k: &str| -> Res<Unknown<'_>> {
                obj.get_named_property(k)
                    .map_err(|e| ErrInfo::invalid(&name, e.reason))
            };
            let product: NewProduct = arg(Some(&get("product")?), &format!("{name}.product"))?;
            let image = input::image(Some(&get("image")?), &format!("{name}.image"))?;
            Ok(IngestItem::new(product, image))
        })
        .collect()
}

/// The extractor behind a `Catalog` search/ingest argument.
pub(crate) fn extractor_arg(v: Option<&Unknown<'_>>) -> Res<dupify_core::Extractor> {
    match v {
        Some(v) if !is_nullish(v) => {
            let x: ClassInstance<Extractor> = unsafe { v.cast() }
                .map_err(|_| ErrInfo::invalid("extractor", "must be an Extractor"))?;
            Ok(x.inner.clone())
        }
        _ => Err(ErrInfo::missing("extractor")),
    }
}
