//! Dupe search: by embedding, by product, by image and by text; candidates from the ANN
//! index (or a scan), re-ranked by the fused channel score, filtered and paged.

use rusqlite::Connection;

use super::crud::{model_mismatch, normalise};
use super::index::{self, IndexMode};
use super::score::{self, ChannelScores};
use super::{
    store, Catalog, Namespace, Product, ProductFeatures, ProductFilter, SearchHit, SearchQuery,
};
use crate::error::{Error, Result};
use crate::extractor::{Extractor, Ops};
use crate::input::ImageInput;

impl Catalog {
    /// Similarity search; see [`SearchQuery`]. Results are sorted by combined score.
    pub fn search(&self, ns: &Namespace, q: &SearchQuery) -> Result<Vec<SearchHit>> {
        ns.validate()?;
        let limit = match q.limit {
            0 => 10,
            l if l <= 1000 => l,
            _ => return Err(Error::invalid("limit", "must be ≤ 1000")),
        };
        if q.offset > 10_000 {
            return Err(Error::invalid("offset", "must be ≤ 10000"));
        }
        let weights = q.weights.unwrap_or_default();
        for w in [weights.clip, weights.shape, weights.color] {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::invalid("weights", "must be finite and ≥ 0"));
            }
        }
        if let Some(p) = q.cheaper_by_percent {
            if !(0.0..100.0).contains(&p) {
                return Err(Error::invalid("cheaper_by_percent", "must be in [0, 100)"));
            }
            if q.by_product.is_none() {
                return Err(Error::MissingParameter {
                    name: "by_product (needed by cheaper_by_percent)".into(),
                });
            }
        }
        if q.exclude_own_brand && q.by_product.is_none() {
            return Err(Error::MissingParameter {
                name: "by_product (needed by exclude_own_brand)".into(),
            });
        }
        if q.min_score.is_some_and(|m| !m.is_finite()) {
            return Err(Error::invalid("min_score", "must be a finite number"));
        }
        if let Some(s) = &q.shape {
            if s.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid("shape", "contains NaN or infinity"));
            }
        }
        let dim = self.dim();
        let mut embedding = match (&q.embedding, dim) {
            (Some(e), Some(d)) => Some(normalise("embedding", e, d)?),
            (Some(e), None) => {
                // Empty catalog: still validate, nothing can match.
                normalise("embedding", e, e.len())?;
                return Ok(Vec::new());
            }
            (None, _) => None,
        };
        let mut shape = q.shape.clone();
        let mut colors = q.colors.clone();
        let mut filter = q.filter.clone();
        filter.push_sql(&mut String::new(), &mut Vec::new())?;

        self.read(|conn| {
            let Some(ns_id) = store::ns_id(conn, ns)? else {
                if let Some(id) = &q.by_product {
                    return Err(Error::NotFound {
                        what: "product",
                        id: id.clone(),
                    });
                }
                return Ok(Vec::new());
            };
            if let (Some(want), Some(_)) = (&q.model_id, &q.embedding) {
                if let Some(have) = store::ns_model(conn, ns_id)? {
                    if &have != want {
                        return Err(model_mismatch("model_id", want, &have));
                    }
                }
            }
            let mut exclude = None;
            if let Some(pid) = &q.by_product {
                let (src, _) =
                    store::get_by(conn, ns_id, "id", pid)?.ok_or_else(|| Error::NotFound {
                        what: "product",
                        id: pid.clone(),
                    })?;
                embedding = embedding.or(src.features.clip.clone());
                shape = shape.or(src.features.shape.clone());
                if colors.is_empty() {
                    colors = src.features.colors.clone();
                }
                if let Some(pct) = q.cheaper_by_percent {
                    let Some(price) = src.price else {
                        return Err(Error::invalid(
                            "cheaper_by_percent",
                            "the query product has no price",
                        ));
                    };
                    let bound = price * (1.0 - pct / 100.0);
                    filter.max_price = Some(filter.max_price.map_or(bound, |m| m.min(bound)));
                    match &filter.currency {
                        Some(c) if !c.eq_ignore_ascii_case(&src.currency) => return Ok(Vec::new()),
                        _ => filter.currency = Some(src.currency.clone()),
                    }
                    if filter.min_price.is_some_and(|lo| lo > bound) {
                        return Ok(Vec::new());
                    }
                }
                if q.exclude_own_brand {
                    if let Some(b) = &src.brand {
                        filter.exclude_brands.push(b.clone());
                    }
                }
                exclude = Some(src.id);
            }
            if embedding.is_none() && shape.is_none() && colors.is_empty() {
                return Err(Error::MissingParameter {
                    name: "embedding, by_product, shape or colors".into(),
                });
            }
            let want = q.offset + limit + usize::from(exclude.is_some());
            let reranks = (weights.shape > 0.0 && shape.is_some())
                || (weights.color > 0.0 && !colors.is_empty());
            let mut scored: Vec<Scored> = match &embedding {
                // No CLIP query: every matching row, scored on shape and colour (rare; SQL).
                None => store::all_filtered(conn, ns_id, &filter)?
                    .into_iter()
                    .filter(|p| exclude.as_deref() != Some(p.id.as_str()))
                    .map(|product| {
                        let scores = ChannelScores {
                            clip: None,
                            shape: match (&shape, &product.features.shape) {
                                (Some(a), Some(b)) => score::cosine(a, b),
                                _ => None,
                            },
                            color: score::palette_similarity(&colors, &product.features.colors),
                        };
                        Scored {
                            vec_id: None,
                            id: product.id.clone(),
                            score: scores.combined(&weights),
                            scores,
                            product: Some(product),
                        }
                    })
                    .collect(),
                // The hot path: candidates and their scores come from memory only.
                Some(e) => {
                    let k = if reranks { (want * 4).max(50) } else { want };
                    self.ann_scored(conn, ns_id, e, k, &filter, |row, clip| {
                        if exclude.as_deref() == Some(&*row.id) {
                            return None;
                        }
                        let scores = ChannelScores {
                            clip: Some(clip),
                            shape: match (&shape, &row.shape) {
                                (Some(a), Some(b)) => score::cosine(a, b),
                                _ => None,
                            },
                            color: score::palette_similarity(&colors, &row.colors),
                        };
                        Some((scores.combined(&weights), scores))
                    })?
                }
            };
            if let Some(m) = q.min_score {
                scored.retain(|h| h.score >= m);
            }
            scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
            // Only the final page is read from SQLite. A row deleted since the index was read
            // is left out (the page is then one shorter), never returned half-read.
            let mut hits = Vec::with_capacity(limit);
            for s in scored.into_iter().skip(q.offset).take(limit) {
                let product = match (s.product, s.vec_id) {
                    (Some(p), _) => Some(p),
                    (None, Some(v)) => store::by_vec_id(conn, ns_id, v)?,
                    (None, None) => None,
                };
                if let Some(product) = product {
                    hits.push(SearchHit {
                        product,
                        score: s.score,
                        scores: s.scores,
                    });
                }
            }
            Ok(hits)
        })
    }

    /// ANN (or exact) candidates for a normalised query that match `filter`, scored by
    /// `score(row, clip cosine)` (which returns `None` to drop one) while the index is read.
    /// Filters on product fields are evaluated in memory; `metadata_eq` asks SQLite for the
    /// matching ids. Selective filters (fewer matches than `brute_force_below`) are answered
    /// exactly over the matching rows; broad ones by the graph with the filter applied inside
    /// the search.
    fn ann_scored(
        &self,
        conn: &Connection,
        ns_id: i64,
        q: &[f32],
        k: usize,
        filter: &ProductFilter,
        score: impl Fn(&index::HotRow, f32) -> Option<(f32, ChannelScores)>,
    ) -> Result<Vec<Scored>> {
        let allowed = if filter.metadata_eq.is_empty() {
            None
        } else {
            Some(store::filtered_vec_ids(conn, ns_id, filter)?)
        };
        let indexes = self.indexes.read().unwrap_or_else(|p| p.into_inner());
        let Some(ix) = indexes.get(&ns_id) else {
            return Ok(Vec::new());
        };
        let hf = ix.compile(filter);
        let mut hits = None;
        if ix.mode() == IndexMode::Ann && (hf.is_active() || allowed.is_some()) {
            let ids: Vec<usize> = match &allowed {
                Some(a) => a
                    .iter()
                    .copied()
                    .filter(|i| ix.row(*i).is_some_and(|r| hf.matches(r)))
                    .collect(),
                None => ix.matching(&hf),
            };
            if ids.len() < self.opts.index.brute_force_below {
                let mut exact: Vec<(usize, f32)> = store::vectors_for(conn, ns_id, &ids)?
                    .into_iter()
                    .map(|(i, v)| (i, index::dot(q, &v)))
                    .collect();
                index::top_k(&mut exact, k);
                hits = Some(exact);
            }
        }
        let hits = match hits {
            Some(h) => h,
            None => ix.search(q, k, &hf, allowed.as_deref()),
        };
        Ok(hits
            .into_iter()
            .filter_map(|(v, clip)| {
                let row = ix.row(v)?;
                let (total, scores) = score(row, clip)?;
                Some(Scored {
                    vec_id: Some(v),
                    id: row.id.to_string(),
                    score: total,
                    scores,
                    product: None,
                })
            })
            .collect())
    }

    /// Extracts the query image's features and searches with them (embedding + shape +
    /// colours). The image's channels replace those set in `query`; `by_product`, filters,
    /// weights and paging apply as in [`Catalog::search`].
    pub fn search_image(
        &self,
        ns: &Namespace,
        extractor: &Extractor,
        image: &ImageInput,
        query: SearchQuery,
    ) -> Result<Vec<SearchHit>> {
        ns.validate()?;
        let ops = Ops {
            embed: true,
            colors: true,
            silhouette: true,
            ..Ops::default()
        };
        let f = ProductFeatures::from(&extractor.extract(image, ops)?);
        let mut q = query;
        q.embedding = f.clip;
        q.model_id = f.model_id;
        if f.shape.is_some() {
            q.shape = f.shape;
        }
        if !f.colors.is_empty() {
            q.colors = f.colors;
        }
        self.search(ns, &q)
    }

    /// CLIP text-tower query: products whose image embedding is nearest the text's
    /// embedding (e.g. "red floral summer dress"). The text replaces `query.embedding`.
    pub fn search_text(
        &self,
        ns: &Namespace,
        extractor: &Extractor,
        text: &str,
        query: SearchQuery,
    ) -> Result<Vec<SearchHit>> {
        ns.validate()?;
        if text.trim().is_empty() {
            return Err(Error::MissingParameter {
                name: "text".into(),
            });
        }
        if text.len() > MAX_QUERY_TEXT_BYTES {
            return Err(Error::invalid(
                "text",
                format!("must be at most {MAX_QUERY_TEXT_BYTES} bytes"),
            ));
        }
        let mut q = query;
        q.embedding = Some(extractor.embed_text(text)?);
        q.model_id = Some(extractor.model_id()?);
        self.search(ns, &q)
    }
}

/// A ranked candidate before its row is read.
struct Scored {
    vec_id: Option<usize>,
    id: String,
    score: f32,
    scores: ChannelScores,
    product: Option<Product>,
}

/// CLIP reads 77 tokens; anything far longer is a mistake, not a query.
const MAX_QUERY_TEXT_BYTES: usize = 4096;
