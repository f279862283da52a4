//! The full scope × operation matrix, against the documented rule written out here: a key
//! with the all-scopes flag may do anything; a single operation needs its scope; a batch needs
//! `batch` plus the scope of every operation inside it.

use dupify_keys::{Environment, Error, KeySpec, KeyStore, Operation, Scope, ScopeSet};

const SCOPES: [Scope; 6] = [
    Scope::Embed,
    Scope::Colors,
    Scope::Silhouette,
    Scope::Attributes,
    Scope::Batch,
    Scope::Catalog,
];
/// Operations that can sit inside a batch.
const INNER: [Scope; 5] = [
    Scope::Embed,
    Scope::Colors,
    Scope::Silhouette,
    Scope::Attributes,
    Scope::Catalog,
];

fn subset(mask: u32, of: &[Scope]) -> Vec<Scope> {
    of.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect()
}

/// Every operation: the five single ones and a batch over every subset of the inner ones.
fn all_operations() -> Vec<(Operation, Vec<Scope>)> {
    let mut ops = vec![
        (Operation::Embed, vec![Scope::Embed]),
        (Operation::Colors, vec![Scope::Colors]),
        (Operation::Silhouette, vec![Scope::Silhouette]),
        (Operation::Attributes, vec![Scope::Attributes]),
        (Operation::Catalog, vec![Scope::Catalog]),
    ];
    for m in 0..32 {
        let inner = subset(m, &INNER);
        let mut need = vec![Scope::Batch];
        need.extend(&inner);
        ops.push((Operation::batch(inner), need));
    }
    ops
}

/// `None` = the all-scopes flag.
fn all_keys() -> Vec<Option<Vec<Scope>>> {
    let mut v = vec![None];
    v.extend((1..64).map(|m| Some(subset(m, &SCOPES))));
    v
}

fn expected(key: &Option<Vec<Scope>>, need: &[Scope]) -> Result<(), Vec<Scope>> {
    match key {
        None => Ok(()),
        Some(held) => {
            let mut missing: Vec<Scope> =
                need.iter().copied().filter(|s| !held.contains(s)).collect();
            missing.sort();
            missing.dedup();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(missing)
            }
        }
    }
}

fn outcome(r: Result<(), Error>) -> Result<(), Vec<Scope>> {
    match r {
        Ok(()) => Ok(()),
        Err(Error::InsufficientScope { mut missing }) => {
            missing.sort();
            Err(missing)
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn scope_set_matrix() {
    let ops = all_operations();
    let mut checked = 0;
    for key in all_keys() {
        let set = match &key {
            None => ScopeSet::all(),
            Some(s) => ScopeSet::from_selection(s.iter().copied()),
        };
        for (op, need) in &ops {
            assert_eq!(
                outcome(set.permits(op)),
                expected(&key, need),
                "{key:?} {op:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 64 * 37);
}

#[test]
fn store_matrix_through_authenticate_and_authorize() {
    let store = KeyStore::open_in_memory(b"matrix pepper").unwrap();
    let ops = all_operations();
    for key in all_keys() {
        let spec = KeySpec::new("k", Environment::Test);
        let spec = match &key {
            None => spec.with_scopes([]),
            Some(s) => spec.with_scopes(s.iter().copied()),
        };
        let created = store.create(spec).unwrap();
        let p = store
            .authenticate([("X-API-Key", created.key.expose())])
            .unwrap();
        for (op, need) in &ops {
            let r = store.authorize(&p, op);
            if let Err(e) = &r {
                assert_eq!((e.code(), e.http_status()), ("insufficient_scope", 403));
            }
            assert_eq!(outcome(r), expected(&key, need), "{key:?} {op:?}");
        }
    }
}

#[test]
fn batch_scope_alone_grants_nothing_inside() {
    let only_batch = ScopeSet::from_selection([Scope::Batch]);
    assert!(only_batch.permits(&Operation::batch([])).is_ok());
    for s in INNER {
        assert!(only_batch.permits(&Operation::batch([s])).is_err());
    }
    // Every scope listed explicitly is still not the all flag (a later scope stays closed).
    let every = ScopeSet::from_selection(SCOPES);
    assert!(!every.is_all());
    assert!(ScopeSet::from_selection([]).is_all());
}
