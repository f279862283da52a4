//! Statements with numbered parameters built up piece by piece, and [`ProductFilter`]s as
//! PostgreSQL conditions: values are always bound, never formatted into the text.

use postgres::types::ToSql;

use crate::catalog::ProductFilter;

/// SQL text and the values of its `$n` parameters, in order.
#[derive(Default)]
pub(super) struct Sql {
    pub text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Binds `v` and returns its placeholder (`$n`).
    pub fn bind(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    /// The first `n` parameters, as the driver takes them.
    pub fn params_upto(&self, n: usize) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .take(n)
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    /// Every parameter.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params_upto(self.params.len())
    }

    /// How many parameters are bound.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Appends ` AND …` conditions on the products aliased `p` for every set field of
    /// `filter`, with the meaning [`ProductFilter`] documents (the filter arrives validated by
    /// `Catalog`). Metadata equality is jsonb containment of `{key: value}`, answered by the
    /// GIN index; containment compares JSON types, so `true` never matches `1`, and numbers
    /// by value, so `1` matches `1.0`, as on SQLite.
    pub fn push_filter(&mut self, f: &ProductFilter) {
        if let Some(c) = &f.category {
            let p = self.bind(c.clone());
            self.text.push_str(&format!(" AND p.category = {p}"));
        }
        if let Some(b) = &f.brand {
            let p = self.bind(b.clone());
            self.text.push_str(&format!(" AND p.brand = {p}"));
        }
        if !f.exclude_brands.is_empty() {
            let p = self.bind(f.exclude_brands.clone());
            self.text.push_str(&format!(
                " AND (p.brand IS NULL OR p.brand <> ALL({p}::text[]))"
            ));
        }
        if let Some(lo) = f.min_price {
            let p = self.bind(lo);
            self.text.push_str(&format!(" AND p.price >= {p}"));
        }
        if let Some(hi) = f.max_price {
            let p = self.bind(hi);
            self.text.push_str(&format!(" AND p.price <= {p}"));
        }
        if let Some(c) = &f.currency {
            let p = self.bind(c.to_ascii_uppercase());
            self.text.push_str(&format!(" AND p.currency = {p}"));
        }
        for (key, val) in &f.metadata_eq {
            let mut obj = serde_json::Map::new();
            obj.insert(key.clone(), val.clone());
            let p = self.bind(serde_json::Value::Object(obj).to_string());
            self.text
                .push_str(&format!(" AND p.metadata @> {p}::text::jsonb"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_value_is_bound_not_formatted() {
        let f = ProductFilter {
            category: Some("dress'; DROP TABLE x; --".into()),
            brand: Some("acme".into()),
            exclude_brands: vec!["bolt".into()],
            min_price: Some(1.0),
            max_price: Some(2.0),
            currency: Some("eur".into()),
            metadata_eq: vec![("size".into(), serde_json::json!("M"))],
        };
        let mut sql = Sql::default();
        sql.push_filter(&f);
        assert_eq!(sql.len(), 7);
        assert!(!sql.text.contains("DROP"), "{}", sql.text);
        assert!(!sql.text.contains("acme") && !sql.text.contains("size"));
        assert!(sql.text.contains("$7::text::jsonb"), "{}", sql.text);
        let mut none = Sql::default();
        none.push_filter(&ProductFilter::default());
        assert!(none.text.is_empty() && none.len() == 0);
    }
}
