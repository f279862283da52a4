//! Scopes and the operations they guard.
//!
//! A key either holds an explicit **all-scopes** flag (created with no scopes selected, as in
//! the hosted dashboard) or a fixed set of scopes. The flag is stored as such, never expanded
//! to "every scope that exists today", so a scope added in a later version is granted to
//! all-scope keys and never silently to a restricted key.
//!
//! **Batch rule.** A [`Operation::Batch`] needs the `batch` scope **and** the scope of every
//! operation inside it. `batch` alone is not a back door to `embed`: a key restricted to
//! `colors` + `batch` may batch colour extraction but not embeddings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One hosted API scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// CLIP embeddings.
    Embed,
    /// Dominant colours.
    Colors,
    /// Silhouette embeddings and cut-outs.
    Silhouette,
    /// Product attributes.
    Attributes,
    /// Multi-operation batch processing (plus the scopes of the operations inside).
    Batch,
    /// Catalog management and search.
    Catalog,
}

impl Scope {
    /// Every scope this version knows, in a fixed order.
    pub const ALL: [Scope; 6] = [
        Scope::Embed,
        Scope::Colors,
        Scope::Silhouette,
        Scope::Attributes,
        Scope::Batch,
        Scope::Catalog,
    ];

    /// The hosted name, e.g. `"embed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Embed => "embed",
            Scope::Colors => "colors",
            Scope::Silhouette => "silhouette",
            Scope::Attributes => "attributes",
            Scope::Batch => "batch",
            Scope::Catalog => "catalog",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Scope::ALL
            .into_iter()
            .find(|sc| sc.as_str() == s)
            .ok_or_else(|| Error::invalid("scope", format!("unknown scope `{s}`")))
    }
}

/// The scopes a key holds: either the explicit all-scopes flag or a set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet {
    all: bool,
    bits: u8,
}

impl ScopeSet {
    /// Every scope, now and in later versions (a key created with no scopes).
    pub const fn all() -> ScopeSet {
        ScopeSet { all: true, bits: 0 }
    }

    /// The hosted rule: an empty selection means all scopes.
    pub fn from_selection<I: IntoIterator<Item = Scope>>(scopes: I) -> ScopeSet {
        let set = ScopeSet::only(scopes);
        if set.bits == 0 {
            ScopeSet::all()
        } else {
            set
        }
    }

    /// Exactly these scopes (an empty iterator gives a set that permits nothing; used for the
    /// contents of a batch).
    pub fn only<I: IntoIterator<Item = Scope>>(scopes: I) -> ScopeSet {
        let bits = scopes.into_iter().fold(0u8, |b, s| b | s.bit());
        ScopeSet { all: false, bits }
    }

    /// Whether this is the all-scopes flag.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// Whether the set grants `scope`.
    pub fn contains(&self, scope: Scope) -> bool {
        self.all || self.bits & scope.bit() != 0
    }

    /// The explicitly listed scopes (empty for the all-scopes flag).
    pub fn listed(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.bits & s.bit() != 0)
    }

    /// Whether the set names no scope and is not the all flag.
    pub fn is_empty(&self) -> bool {
        !self.all && self.bits == 0
    }

    /// Checks `op` against this set. On refusal the error lists every missing scope.
    pub fn permits(&self, op: &Operation) -> Result<(), Error> {
        if self.all {
            return Ok(());
        }
        let needed = op.required();
        let missing = needed.bits & !self.bits;
        if missing == 0 {
            Ok(())
        } else {
            Err(Error::InsufficientScope {
                missing: ScopeSet {
                    all: false,
                    bits: missing,
                }
                .listed()
                .collect(),
            })
        }
    }

    /// Storage form: comma-separated names, `""` for the all flag (which is stored in its own
    /// column).
    pub(crate) fn to_db(self) -> String {
        self.listed()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form without allocating. Unknown names (written by a later version)
    /// are dropped: a restricted key only ever narrows when read by an older version.
    pub(crate) fn from_db(all: bool, list: &str) -> ScopeSet {
        if all {
            return ScopeSet::all();
        }
        ScopeSet::only(list.split(',').filter_map(|n| n.parse::<Scope>().ok()))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.all {
            f.write_str("ScopeSet(all)")
        } else {
            f.debug_set().entries(self.listed()).finish()
        }
    }
}

impl Serialize for ScopeSet {
    /// `"all"` or a list of scope names.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.all {
            s.serialize_str("all")
        } else {
            s.collect_seq(self.listed())
        }
    }
}

/// An operation a request wants to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/v1/embed`.
    Embed,
    /// `/v1/colors`.
    Colors,
    /// `/v1/silhouette` (and background removal).
    Silhouette,
    /// `/v1/attributes`.
    Attributes,
    /// Any catalog call.
    Catalog,
    /// A batch running the operations whose scopes are listed in `contains` (a batch never
    /// needs more than `batch` + those scopes; see the module docs).
    Batch {
        /// Scopes of the operations inside the batch.
        contains: ScopeSet,
    },
}

impl Operation {
    /// A batch of the given operations' scopes.
    pub fn batch<I: IntoIterator<Item = Scope>>(inner: I) -> Operation {
        Operation::Batch {
            contains: ScopeSet::only(inner),
        }
    }

    /// The scopes this operation needs (never the all flag).
    pub fn required(&self) -> ScopeSet {
        match self {
            Operation::Embed => ScopeSet::only([Scope::Embed]),
            Operation::Colors => ScopeSet::only([Scope::Colors]),
            Operation::Silhouette => ScopeSet::only([Scope::Silhouette]),
            Operation::Attributes => ScopeSet::only([Scope::Attributes]),
            Operation::Catalog => ScopeSet::only([Scope::Catalog]),
            Operation::Batch { contains } => {
                // An all-flag passed as batch contents means "every scope".
                let inner = if contains.all {
                    Scope::ALL.iter().fold(0, |b, s| b | s.bit())
                } else {
                    contains.bits
                };
                ScopeSet {
                    all: false,
                    bits: inner | Scope::Batch.bit(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_selection_is_the_all_flag_and_round_trips() {
        let s = ScopeSet::from_selection([]);
        assert!(s.is_all());
        assert_eq!(s.to_db(), "");
        assert_eq!(ScopeSet::from_db(true, ""), ScopeSet::all());
        let r = ScopeSet::from_selection([Scope::Colors, Scope::Batch]);
        assert_eq!(r.to_db(), "colors,batch");
        assert_eq!(ScopeSet::from_db(false, "colors,batch"), r);
        // A name from a later version narrows, never widens.
        assert_eq!(ScopeSet::from_db(false, "colors,batch,video"), r);
        assert!(!ScopeSet::from_db(false, "video").contains(Scope::Embed));
    }

    #[test]
    fn scope_names_parse() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
        }
        assert!("Embed".parse::<Scope>().is_err());
        assert!("".parse::<Scope>().is_err());
    }

    #[test]
    fn missing_scopes_are_listed() {
        let s = ScopeSet::from_selection([Scope::Batch]);
        let e = s
            .permits(&Operation::batch([Scope::Embed, Scope::Colors]))
            .unwrap_err();
        match e {
            Error::InsufficientScope { missing } => {
                assert_eq!(missing, vec![Scope::Embed, Scope::Colors])
            }
            other => panic!("{other:?}"),
        }
    }
}
