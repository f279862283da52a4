//! Dupe search: by embedding, by product, by image and by text; candidates from the ANN
//! index (or a scan), re-ranked by the fused channel score, filtered and paged.

use super::backend::{Candidate, ProductKey, Ranked};
use super::crud::{model_mismatch, normalise};
use super::score::{self, ChannelScores};
use super::{Catalog, Namespace, Product, ProductFeatures, SearchHit, SearchQuery};
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
        let dim = self.backend.dim();
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
        filter.validate()?;

        if let (Some(want), Some(_)) = (&q.model_id, &q.embedding) {
            if let Some(have) = self.backend.namespace_model(ns)? {
                if &have != want {
                    return Err(model_mismatch("model_id", want, &have));
                }
            }
        }
        let mut exclude = None;
        if let Some(pid) = &q.by_product {
            let src =
                self.backend
                    .get(ns, ProductKey::Id(pid))?
                    .ok_or_else(|| Error::NotFound {
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
        let reranks =
            (weights.shape > 0.0 && shape.is_some()) || (weights.color > 0.0 && !colors.is_empty());
        let mut scored: Vec<Scored> = match &embedding {
            // No CLIP query: every matching row, scored on shape and colour (rare; SQL).
            None => self
                .backend
                .scan(ns, &filter)?
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
                        ranked: None,
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
                let score = |c: &Candidate<'_>, clip: f32| {
                    if exclude.as_deref() == Some(c.id) {
                        return None;
                    }
                    let scores = ChannelScores {
                        clip: Some(clip),
                        shape: match (&shape, c.shape) {
                            (Some(a), Some(b)) => score::cosine(a, b),
                            _ => None,
                        },
                        color: score::palette_similarity(&colors, c.colors),
                    };
                    Some((scores.combined(&weights), scores))
                };
                self.backend
                    .nearest(ns, e, k, &filter, &score)?
                    .into_iter()
                    .map(|r| Scored {
                        id: r.id.clone(),
                        score: r.score,
                        scores: r.scores,
                        product: None,
                        ranked: Some(r),
                    })
                    .collect()
            }
        };
        if let Some(m) = q.min_score {
            scored.retain(|h| h.score >= m);
        }
        scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        // Only the final page's rows are read. A row deleted since the index was read, or
        // rewritten so that it no longer passes the filter, is left out (the page is then
        // one shorter), never returned half-read or stale.
        let page: Vec<Scored> = scored.into_iter().skip(q.offset).take(limit).collect();
        let to_read: Vec<&Ranked> = page
            .iter()
            .filter(|s| s.product.is_none())
            .filter_map(|s| s.ranked.as_ref())
            .collect();
        let mut read = self.backend.resolve_many(ns, &to_read)?.into_iter();
        let mut hits = Vec::with_capacity(limit);
        for s in page {
            let product = match (s.product, &s.ranked) {
                (Some(p), _) => Some(p),
                (None, Some(_)) => read.next().flatten(),
                (None, None) => None,
            };
            // A row rewritten since the lookup is judged as it is now.
            if let Some(product) = product.filter(|p| filter.matches(p)) {
                hits.push(SearchHit {
                    product,
                    score: s.score,
                    scores: s.scores,
                });
            }
        }
        Ok(hits)
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

/// A ranked candidate: from the backend's index (its row read only if it reaches the page),
/// or from a scan (row already read).
struct Scored {
    ranked: Option<Ranked>,
    id: String,
    score: f32,
    scores: ChannelScores,
    product: Option<Product>,
}

/// CLIP reads 77 tokens; anything far longer is a mistake, not a query.
const MAX_QUERY_TEXT_BYTES: usize = 4096;
