//! Product filters, compiled to SQL with bound parameters (never string-interpolated values).

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Restricts listed or searched products. Every set field must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProductFilter {
    /// Exact category.
    pub category: Option<String>,
    /// Exact brand.
    pub brand: Option<String>,
    /// Brands to leave out (exact match). Products without a brand are kept: they are not
    /// any of these brands.
    #[serde(default)]
    pub exclude_brands: Vec<String>,
    /// Minimum price (inclusive). Products without a price never match a price bound.
    pub min_price: Option<f64>,
    /// Maximum price (inclusive).
    pub max_price: Option<f64>,
    /// Exact currency code (e.g. "USD").
    pub currency: Option<String>,
    /// Top-level metadata keys that must equal these scalar JSON values.
    #[serde(default)]
    pub metadata_eq: Vec<(String, serde_json::Value)>,
}

impl ProductFilter {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &ProductFilter::default()
    }

    /// Checks the filter's values (finite prices, `min_price ≤ max_price`, metadata keys):
    /// `Catalog` refuses a bad filter before any backend sees it. The checks are the SQL
    /// builder's own, so the two cannot disagree.
    pub fn validate(&self) -> Result<()> {
        self.push_sql(&mut String::new(), &mut Vec::new())
    }

    /// Whether `p` passes the filter, decided in memory with the SQL clauses' meaning. A
    /// search reads its final page's rows after the index lookup; a row rewritten in between
    /// (another process's upsert) may no longer match, and is left out like a deleted one.
    pub(crate) fn matches(&self, p: &super::Product) -> bool {
        let eq = |want: &Option<String>, have: Option<&String>| {
            want.as_ref().is_none_or(|w| have == Some(w))
        };
        eq(&self.category, p.category.as_ref())
            && eq(&self.brand, p.brand.as_ref())
            && p.brand
                .as_ref()
                .is_none_or(|b| !self.exclude_brands.contains(b))
            && self
                .min_price
                .is_none_or(|lo| p.price.is_some_and(|v| v >= lo))
            && self
                .max_price
                .is_none_or(|hi| p.price.is_some_and(|v| v <= hi))
            && self
                .currency
                .as_ref()
                .is_none_or(|c| c.eq_ignore_ascii_case(&p.currency))
            && self.metadata_eq.iter().all(|(key, want)| {
                p.metadata.get(key).is_some_and(|have| match (have, want) {
                    // SQL compares JSON numbers by value: 1 equals 1.0.
                    (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
                        a.as_f64() == b.as_f64()
                    }
                    _ => have == want,
                })
            })
    }

    /// Appends `AND …` clauses for this filter to `sql` and their values to `params`.
    pub(crate) fn push_sql(&self, sql: &mut String, params: &mut Vec<Value>) -> Result<()> {
        if let Some(c) = &self.category {
            sql.push_str(" AND category = ?");
            params.push(Value::Text(c.clone()));
        }
        if let Some(b) = &self.brand {
            sql.push_str(" AND brand = ?");
            params.push(Value::Text(b.clone()));
        }
        if !self.exclude_brands.is_empty() {
            let marks = vec!["?"; self.exclude_brands.len()].join(", ");
            sql.push_str(&format!(" AND (brand IS NULL OR brand NOT IN ({marks}))"));
            params.extend(self.exclude_brands.iter().cloned().map(Value::Text));
        }
        for (name, v) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if let Some(p) = v {
                if !p.is_finite() {
                    return Err(Error::invalid(name, "must be a finite number"));
                }
                sql.push_str(if name == "min_price" {
                    " AND price >= ?"
                } else {
                    " AND price <= ?"
                });
                params.push(Value::Real(p));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_price, self.max_price) {
            if lo > hi {
                return Err(Error::invalid("min_price", "is greater than max_price"));
            }
        }
        if let Some(c) = &self.currency {
            sql.push_str(" AND currency = ?");
            params.push(Value::Text(c.to_ascii_uppercase()));
        }
        for (key, val) in &self.metadata_eq {
            if key.is_empty() || key.contains(['"', '\\']) || key.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "metadata_eq",
                    format!("key {key:?} must be non-empty, without quotes, backslashes or control characters"),
                ));
            }
            let bound = match val {
                serde_json::Value::String(s) => Value::Text(s.clone()),
                serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
                },
                _ => {
                    return Err(Error::invalid(
                        "metadata_eq",
                        format!("value for {key:?} must be a string, number or boolean"),
                    ))
                }
            };
            // `json_extract` returns SQL text/integer/real for JSON scalars; `json_type`
            // keeps `true` from matching the number 1.
            let type_clause = match val {
                serde_json::Value::String(_) => "= 'text'",
                serde_json::Value::Bool(true) => "= 'true'",
                serde_json::Value::Bool(false) => "= 'false'",
                _ => "IN ('integer', 'real')",
            };
            sql.push_str(&format!(
                " AND json_type(metadata, ?) {type_clause} AND json_extract(metadata, ?) = ?"
            ));
            let path = format!("$.\"{key}\"");
            params.push(Value::Text(path.clone()));
            params.push(Value::Text(path));
            params.push(bound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Environment, Namespace, NewProduct};
    use serde_json::json;

    fn product() -> super::super::Product {
        let mut p = NewProduct::new("p");
        p.category = Some("dress".into());
        p.brand = Some("Zara".into());
        p.price = Some(40.0);
        p.currency = Some("EUR".into());
        p.metadata = json!({"season": "summer", "size": 38, "sale": true});
        let ns = Namespace::new("a", Environment::Test).unwrap();
        p.to_product("id".into(), &ns, 0, 0)
    }

    #[test]
    fn matches_in_memory_as_the_sql_does() {
        let p = product();
        let f = |f: ProductFilter| f.matches(&p);
        assert!(f(ProductFilter::default()));
        let yes = [
            ProductFilter {
                category: Some("dress".into()),
                ..Default::default()
            },
            ProductFilter {
                brand: Some("Zara".into()),
                ..Default::default()
            },
            ProductFilter {
                exclude_brands: vec!["H&M".into()],
                ..Default::default()
            },
            ProductFilter {
                min_price: Some(40.0),
                max_price: Some(40.0),
                ..Default::default()
            },
            ProductFilter {
                currency: Some("eur".into()),
                ..Default::default()
            },
            ProductFilter {
                metadata_eq: vec![
                    ("season".into(), json!("summer")),
                    ("size".into(), json!(38.0)),
                    ("sale".into(), json!(true)),
                ],
                ..Default::default()
            },
        ];
        for filter in yes {
            assert!(f(filter.clone()), "{filter:?}");
        }
        let no = [
            ProductFilter {
                category: Some("shoes".into()),
                ..Default::default()
            },
            ProductFilter {
                brand: Some("zara".into()),
                ..Default::default()
            },
            ProductFilter {
                exclude_brands: vec!["Zara".into()],
                ..Default::default()
            },
            ProductFilter {
                min_price: Some(40.01),
                ..Default::default()
            },
            ProductFilter {
                max_price: Some(39.99),
                ..Default::default()
            },
            ProductFilter {
                currency: Some("USD".into()),
                ..Default::default()
            },
            ProductFilter {
                metadata_eq: vec![("season".into(), json!("winter"))],
                ..Default::default()
            },
            ProductFilter {
                metadata_eq: vec![("sale".into(), json!(1))],
                ..Default::default()
            },
            ProductFilter {
                metadata_eq: vec![("missing".into(), json!("x"))],
                ..Default::default()
            },
        ];
        for filter in no {
            assert!(!f(filter.clone()), "{filter:?}");
        }
        // No price never matches a price bound; no brand is never excluded.
        let mut bare = product();
        bare.price = None;
        bare.brand = None;
        assert!(!ProductFilter {
            min_price: Some(0.0),
            ..Default::default()
        }
        .matches(&bare));
        assert!(ProductFilter {
            exclude_brands: vec!["Zara".into()],
            ..Default::default()
        }
        .matches(&bare));
    }
}
