//! `dupify keys …`: the hosted dashboard's key management on a local key database.
//!
//! The pepper (the HMAC secret keys are stored under) follows the one convention of
//! `dupify_keys::Pepper`, shared with `dupify-server`: `--pepper-file`, else the
//! `DUPIFY_PEPPER` environment variable, else the file `<db>.pepper` next to the database.
//! `keys create` on a database that does not exist yet, with none of these, generates
//! `<db>.pepper` (32 random bytes as hex, mode 0600) and says so. Every other case without a
//! pepper is refused: a pepper made up for an existing database would silently make every
//! stored key unverifiable. A key made here verifies on a server using the same database.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use dupify_core::catalog::{postgres_url, redact_url};
use dupify_keys::{KeyRecord, KeySpec, KeyStore, Limits, Pepper, PepperSource, UsageCounts};
use serde::Serialize;

use crate::cli::{KeyCreateArgs, KeysArgs, KeysCommand};
use crate::common::{self, BOLD, DIM};

#[derive(Serialize)]
struct CreatedJson<'a> {
    key: &'a str,
    record: &'a KeyRecord,
}

pub fn run(args: &KeysArgs) -> anyhow::Result<ExitCode> {
    let creating = matches!(args.command, KeysCommand::Create(_));
    let pepper = pepper(args, creating)?;
    let store = KeyStore::open(&args.db, pepper.as_bytes())
        .with_context(|| format!("opening key database {}", db_name(args)))?;
    match &args.command {
        KeysCommand::Create(c) => create(&store, c)?,
        KeysCommand::List { json } => list(&store, *json)?,
        KeysCommand::Revoke { id } => {
            store.revoke(*id)?;
            eprintln!("revoked key {id}");
        }
        KeysCommand::Regenerate {
            id,
            grace_secs,
            json,
        } => {
            let grace = (*grace_secs > 0).then(|| Duration::from_secs(*grace_secs));
            let created = store.regenerate(*id, grace)?;
            print_created(&created, *json)?;
            eprintln!(
                "key {id} {}; its replacement is key {}",
                if grace.is_some() {
                    format!("keeps working for {grace_secs} s")
                } else {
                    "is revoked".to_string()
                },
                created.record.id
            );
        }
        KeysCommand::Usage { id, json } => usage(&store, *id, *json)?,
    }
    store.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn create(store: &KeyStore, c: &KeyCreateArgs) -> anyhow::Result<()> {
    let tier = Limits::tier(c.tier.into());
    let monthly = if c.no_monthly_cap {
        None
    } else {
        c.monthly.or(tier.monthly)
    };
    let limits = Limits::custom(c.per_minute.unwrap_or(tier.per_minute), monthly)?;
    let mut spec = KeySpec::new(c.name.clone(), c.environment)
        .with_scopes(c.scopes.iter().copied())
        .with_limits(limits);
    if let Some(days) = c.expires_in_days {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("system clock before 1970")?
            .as_secs();
        let at = now + u64::from(days) * 86_400;
        spec = spec.with_expiry(i64::try_from(at).context("expiry out of range")?);
    }
    let created = store.create(spec)?;
    print_created(&created, c.json)?;
    eprintln!(
        "created key {} \"{}\" ({}, scopes {}, {}); this is the only time it is shown",
        created.record.id,
        created.record.name,
        created.record.env,
        scopes(&created.record),
        limits_text(created.record.limits)
    );
    Ok(())
}

/// The plaintext key alone on stdout (so `KEY=$(dupify keys create …)` works), or JSON.
fn print_created(created: &dupify_keys::CreatedKey, json: bool) -> anyhow::Result<()> {
    if json {
        common::print_json(&CreatedJson {
            key: created.key.expose(),
            record: &created.record,
        })
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", created.key.expose())?;
        Ok(())
    }
}

fn list(store: &KeyStore, json: bool) -> anyhow::Result<()> {
    let keys = store.list()?;
    if json {
        return common::print_json(&keys);
    }
    let mut out = anstream::stdout().lock();
    if keys.is_empty() {
        writeln!(out, "no keys")?;
        return Ok(());
    }
    writeln!(
        out,
        "{DIM}{:>4}  {:<20} {:<5} {:<9} {:<17} {:<28} {:<20} last used{DIM:#}",
        "id", "name", "env", "status", "key", "scopes", "limits"
    )?;
    for k in &keys {
        writeln!(
            out,
            "{:>4}  {:<20} {:<5} {:<9} {:<17} {:<28} {:<20} {}",
            k.id,
            k.name,
            k.env.as_str(),
            serde_json::to_value(k.status)?.as_str().unwrap_or("?"),
            k.preview,
            scopes(k),
            limits_text(k.limits),
            k.last_used_at.map_or_else(|| "never".into(), common::time)
        )?;
    }
    Ok(())
}

fn usage(store: &KeyStore, id: i64, json: bool) -> anyhow::Result<()> {
    let u = store.usage(id)?;
    if json {
        return common::print_json(&u);
    }
    let mut out = anstream::stdout().lock();
    writeln!(
        out,
        "{BOLD}key {id}{BOLD:#}: last used {}",
        u.last_used_at.map_or_else(|| "never".into(), common::time)
    )?;
    for (title, table) in [("per month", &u.monthly), ("per day", &u.daily)] {
        writeln!(out, "{title}:")?;
        if table.is_empty() {
            writeln!(out, "  no requests")?;
        }
        for (period, counts) in table {
            writeln!(out, "  {period:<10} {}", counts_text(counts))?;
        }
    }
    Ok(())
}

fn counts_text(c: &UsageCounts) -> String {
    let scopes: Vec<String> = c.by_scope.iter().map(|(s, n)| format!("{s} {n}")).collect();
    if scopes.is_empty() {
        format!("{} requests", c.requests)
    } else {
        format!("{} requests ({})", c.requests, scopes.join(", "))
    }
}

fn scopes(k: &KeyRecord) -> String {
    if k.scopes.is_all() {
        "all".into()
    } else {
        let s: Vec<&str> = k.scopes.listed().map(|s| s.as_str()).collect();
        s.join(",")
    }
}

fn limits_text(l: Limits) -> String {
    match l.monthly {
        Some(m) => format!("{}/min, {m}/month", l.per_minute),
        None => format!("{}/min, no cap", l.per_minute),
    }
}

/// The pepper, as described in the module docs.
/// The key database as messages name it: its path, or its URL with the password hidden.
fn db_name(args: &KeysArgs) -> String {
    match postgres_url(&args.db) {
        Some(url) => redact_url(url),
        None => args.db.display().to_string(),
    }
}

fn pepper(args: &KeysArgs, creating: bool) -> anyhow::Result<Pepper> {
    // A database server has no folder for a `<db>.pepper` file: the pepper must be given, and
    // is never generated (the database may already hold keys made under another one).
    if postgres_url(&args.db).is_some()
        && args.pepper_file.is_none()
        && std::env::var_os(dupify_keys::PEPPER_ENV).is_none()
    {
        anyhow::bail!(
            "no key pepper for {}: pass --pepper-file or set {} (every host sharing the key \
             database must use the same pepper)",
            db_name(args),
            dupify_keys::PEPPER_ENV
        );
    }
    let (pepper, source) = Pepper::resolve(args.pepper_file.as_deref(), &args.db, creating)?;
    if let PepperSource::Generated(path) = source {
        eprintln!(
            "generated a new key pepper in {}: keep it secret and keep it with the database \
             (without it no key in it can be verified)",
            path.display()
        );
    }
    Ok(pepper)
}
