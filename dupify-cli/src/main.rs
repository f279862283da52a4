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
//! Model: see `dupify --help`. Default: a real CLIP when installed, else the pretrained
//! EfficientNet-Lite2 that `scripts/setup.sh` installs (image embeddings and a category head;
//! no text search). A seeded random-weight test model is used only when named, with a warning.
//!
//! Real run (`scripts/demo.sh` on the 2-core VM: the default EfficientNet-Lite2, 39 bundled
//! photos indexed, one dress held back):
//! ```text
//! $ dupify index target/demo/photos --catalog target/demo/shop.db
//! indexed 39, unchanged 0 (skipped), failed 0 — target/demo/shop.db holds 39 products in local/test
//! $ dupify search target/demo/query.jpg --catalog target/demo/shop.db --limit 3
//!   #   score    clip  shape  color  product                                              category    brand  price
//!   1   0.649   0.537  0.968  0.848  dress/28b09463-6bbb-491d-9ffc-f36df5c6b211.jpg       dress       -      -
//!   2   0.578   0.436  0.916  0.904  shirt/01b3083f-4387-4753-8ae2-a2470dc53f19.jpg       shirt       -      -
//!   3   0.548   0.399  0.906  0.887  longsleeve/03a33083-e7bf-414d-bd35-c56273ae779c.jpg  longsleeve  -      -
//! $ dupify extract target/demo/query.jpg --ops colors,silhouette,attributes,quality
//! target/demo/query.jpg  400x534 sha256 a2750e4bb8c0…
//!   colours     product 42% of the frame, family blue
//!           42.5%  #95a9c9  lightsteelblue       blue
//!           20.1%  #88949f  lightslategray       grey
//!   …
//!   silhouette  bbox 322x410 at (47, 60), area 42%, confidence 0.96, shape 192-d
//!   attributes  category dress
//!     category         dress                0.97
//!   quality     0.87 (sharpness 0.77, brightness 0.94, composition 0.92)
//! ```
//! (The `clip` column is the embedding channel, whichever model made it.)

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
