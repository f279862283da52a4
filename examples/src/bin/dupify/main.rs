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
//! Real run (`scripts/demo.sh`: the seeded ViT-B/32 test model, 39 bundled photos indexed,
//! one dress held back; scores are therefore not semantic on the CLIP channel):
//! ```text
//! $ dupify index target/demo/photos --catalog target/demo/shop.db
//! warning: weights/test/clip/vit-b-32 is a seeded RANDOM-weight test model: the CLIP channel …
//! indexed 39, unchanged 0 (skipped), failed 0 — target/demo/shop.db holds 39 products in local/test
//! $ dupify search target/demo/query.jpg --catalog target/demo/shop.db --limit 3
//!   #   score    clip  shape  color  product                                              category    brand  price
//!   1   0.970   0.992  0.939  0.898  shirt/01b3083f-4387-4753-8ae2-a2470dc53f19.jpg       shirt       -      -
//!   2   0.970   0.993  0.953  0.876  longsleeve/03a33083-e7bf-414d-bd35-c56273ae779c.jpg  longsleeve  -      -
//!   3   0.960   0.985  0.965  0.838  pants/046d0a65-f5a6-47f6-afaf-e692bfcfcb00.jpg       pants       -      -
//! $ dupify extract target/demo/query.jpg --ops colors,silhouette,quality
//! target/demo/query.jpg  400x711 sha256 fd659f97bab7…
//!   colours     product 42% of the frame, family multicolour
//!           26.6%  #a76e65  indianred            red
//!           22.6%  #1e1b25  black                black
//!   …
//!   silhouette  bbox 290x557 at (55, 77), area 42%, confidence 0.94, shape 192-d
//!   quality     0.86 (sharpness 0.75, brightness 0.89, composition 0.98)
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
