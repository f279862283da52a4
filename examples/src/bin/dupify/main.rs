//! `dupify` — the Dupify command-line tool.
//!
//! ```text
//! dupify extract IMAGE… [--ops embed,colors,silhouette,attributes,quality] [--json]
//! dupify index FOLDER --catalog shop.db [--account local] [--env test|live]
//! dupify search IMAGE | --text "…" | --product ID  --catalog shop.db [filters] [--json]
//! dupify cutout IMAGE -o out.png
//! dupify keys --db keys.db create|list|revoke|regenerate|usage …
//! ```
//!
//! Exit status: **0** success; **1** runtime error (the message on stderr starts with
//! `dupify:`; for `extract` and `index` every item is still attempted and the failed ones are
//! listed); **2** usage error (clap's message and usage line). Results go to stdout, messages,
//! warnings and progress bars to stderr; colours and progress bars appear only on a terminal
//! (`NO_COLOR` turns colours off, `CLICOLOR_FORCE=1` on). A closed stdout (`dupify … | head`)
//! ends the program quietly with status 0.
//!
//! Catalog namespace: `--account` (default `local`) and `--env` (default `test`, so that
//! experiments never touch live data; pass `--env live` for production data).
//!
//! Model: see `dupify --help`; a seeded random-weight test model is announced with a warning
//! because its CLIP channel is not semantic.
//!
//! Real run (seeded test model, the bundled photos):
//! ```text
//! $ dupify index dupify-core/tests/assets/clothing --catalog /tmp/shop.db
//! warning: weights/test/clip/vit-b-32 is a seeded RANDOM-weight test model: …
//! indexed 40, unchanged 0 (skipped), failed 0 — /tmp/shop.db holds 40 products in local/test
//! ```

mod cli;
mod common;
mod cutout;
mod extract;
mod index;
mod keys;
mod search;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Usage errors exit here with status 2; --help and --version with 0.
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = anstream::stderr();
            let _ = writeln!(err, "dupify: {}error{:#}: {e:#}", common::RED, common::RED);
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Extract(a) => extract::run(&cli.global, a),
        Command::Index(a) => index::run(&cli.global, a),
        Command::Search(a) => search::run(&cli.global, a),
        Command::Cutout(a) => cutout::run(&cli.global, a),
        Command::Keys(a) => keys::run(a),
    }
}

/// Whether the error is a write to a closed pipe (the reader went away: not our failure).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
