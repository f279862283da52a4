//! `dupify search`: dupes by image, by text or of a stored product, with the catalog filters;
//! prints each hit's combined score and its CLIP, shape and colour scores.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use dupify_core::catalog::{Catalog, Namespace, ProductFilter, SearchHit, SearchQuery};
use dupify_core::{Error, ImageInput};
use serde::Serialize;

use crate::cli::{Global, SearchArgs};
use crate::common::{self, BOLD, DIM};

/// One hit in `--json` output: the product without its stored feature vectors (hundreds of
/// numbers nobody reads in a terminal; `dupify extract --json` gives them for an image).
#[derive(Serialize)]
struct JsonHit {
    rank: usize,
    score: f32,
    scores: dupify_core::catalog::ChannelScores,
    product: serde_json::Value,
}

pub fn run(global: &Global, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let ns = common::namespace(&args.catalog)?;
    let catalog = common::open_catalog(&args.catalog, true)?;
    let mut query = SearchQuery {
        filter: ProductFilter {
            category: args.category.clone(),
            brand: args.brand.clone(),
            min_price: args.min_price,
            max_price: args.max_price,
            currency: args.currency.clone(),
            exclude_brands: args.exclude_brands.clone(),
            ..ProductFilter::default()
        },
        cheaper_by_percent: args.cheaper_by,
        exclude_own_brand: args.exclude_own_brand,
        min_score: args.min_score,
        limit: usize::from(args.limit),
        ..SearchQuery::default()
    };

    let (what, hits) = if let Some(image) = &args.image {
        let model = common::resolve_model(global)?;
        let x = common::extractor(global, Some(&model))?;
        let hits = catalog
            .search_image(&ns, &x, &ImageInput::Path(image.clone()), query)
            .with_context(|| format!("searching with {}", image.display()))?;
        (image.display().to_string(), hits)
    } else if let Some(text) = &args.text {
        let model = common::resolve_model(global)?;
        let x = common::extractor(global, Some(&model))?;
        let hits = catalog
            .search_text(&ns, &x, text, query)
            .context("searching by text")?;
        (format!("\"{text}\""), hits)
    } else if let Some(id) = &args.product {
        // The stored product's own features are the query: no model is loaded.
        let product = find_product(&catalog, &ns, id)?;
        query.by_product = Some(product.id.clone());
        let hits = catalog.search(&ns, &query).context("searching")?;
        (format!("product {}", product.external_id), hits)
    } else {
        // clap's required argument group makes this unreachable from the command line.
        anyhow::bail!("give an IMAGE, --text or --product");
    };

    if args.json {
        let items: Vec<JsonHit> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| json_hit(i + 1, h))
            .collect::<anyhow::Result<_>>()?;
        common::print_json(&items)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = anstream::stdout().lock();
    writeln!(
        out,
        "{BOLD}top {} dupes of {what}{BOLD:#}  {DIM}({}, {}/{}){DIM:#}",
        hits.len(),
        common::catalog_name(&args.catalog),
        ns.account,
        ns.environment.as_str()
    )?;
    if hits.is_empty() {
        writeln!(out, "  no product matches")?;
        return Ok(ExitCode::SUCCESS);
    }
    // Column widths from the content, so long external ids (paths) keep the table aligned.
    let width = |f: &dyn Fn(&SearchHit) -> usize, min: usize| {
        hits.iter().map(f).max().unwrap_or(0).max(min)
    };
    let wp = width(&|h| h.product.external_id.chars().count(), 7);
    let wc = width(
        &|h| {
            h.product
                .category
                .as_deref()
                .map_or(1, |c| c.chars().count())
        },
        8,
    );
    let wb = width(
        &|h| h.product.brand.as_deref().map_or(1, |b| b.chars().count()),
        5,
    );
    writeln!(
        out,
        "{DIM}{:>3}  {:>6}  {:>6} {:>6} {:>6}  {:<wp$}  {:<wc$}  {:<wb$}  price{DIM:#}",
        "#", "score", "clip", "shape", "color", "product", "category", "brand"
    )?;
    for (i, h) in hits.iter().enumerate() {
        let p = &h.product;
        let price = p
            .price
            .map_or_else(|| "-".to_string(), |v| format!("{v:.2} {}", p.currency));
        writeln!(
            out,
            "{:>3}  {BOLD}{:>6.3}{BOLD:#}  {:>6} {:>6} {:>6}  {:<wp$}  {:<wc$}  {:<wb$}  {}",
            i + 1,
            h.score,
            common::score(h.scores.clip),
            common::score(h.scores.shape),
            common::score(h.scores.color),
            p.external_id,
            p.category.as_deref().unwrap_or("-"),
            p.brand.as_deref().unwrap_or("-"),
            price
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A product by catalog id, else by external id (what `dupify index` prints and users know).
fn find_product(
    catalog: &Catalog,
    ns: &Namespace,
    id: &str,
) -> anyhow::Result<dupify_core::catalog::Product> {
    match catalog.get(ns, id) {
        Ok(p) => Ok(p),
        Err(Error::NotFound { .. }) => catalog.get_by_external_id(ns, id).map_err(|e| match e {
            Error::NotFound { .. } => anyhow::anyhow!(
                "no product with id or external id `{id}` in {}/{}",
                ns.account,
                ns.environment.as_str()
            ),
            e => e.into(),
        }),
        Err(e) => Err(e.into()),
    }
}

fn json_hit(rank: usize, h: &SearchHit) -> anyhow::Result<JsonHit> {
    let mut product = serde_json::to_value(&h.product)?;
    if let Some(obj) = product.as_object_mut() {
        obj.remove("features");
    }
    Ok(JsonHit {
        rank,
        score: h.score,
        scores: h.scores,
        product,
    })
}
