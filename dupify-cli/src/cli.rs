//! Command-line grammar (clap derive). Values are validated here, by clap, so that every
//! malformed argument is a usage error (exit status 2) reported before any work starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dupify_core::catalog::Environment;
use dupify_core::{Device, Ops, Precision};
use dupify_keys::Scope;

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 runtime error (unreadable input, failed image, missing catalog, \
bad key id…) — the message on stderr says which; 2 usage error (bad or missing arguments).

Model: --model DIR (or DUPIFY_MODEL): a CLIP checkpoint or an EfficientNet-Lite directory. \
Default: a real CLIP in weights/real/clip-vit-base-patch32 when present, else the pretrained \
ImageNet EfficientNet-Lite2 that scripts/setup.sh installs in weights/real/efficientnet-lite2 \
(image embeddings and a trained category head; no text search). Seeded test models only when \
named, with a warning.";

/// Find product dupes from images: extract features, index a folder into a catalog, search
/// it by image, text or product, cut products out, manage API keys.
#[derive(Debug, Parser)]
#[command(name = "dupify", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct Global {
    /// Model directory: a CLIP checkpoint (Hugging Face CLIPModel layout) or an
    /// EfficientNet-Lite directory. Default: a real CLIP in weights/real/, else the pretrained
    /// EfficientNet-Lite2 that setup installs.
    #[arg(long, global = true, env = "DUPIFY_MODEL", value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Where the model runs: auto, cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Model precision: f32, f16 or bf16 (CUDA; bf16 also on CPU), or int8 (CPU only:
    /// ~1.5x faster there, embeddings at cosine 0.9996 of f32).
    #[arg(long, global = true, default_value = "f32", value_parser = parse_precision)]
    pub precision: Precision,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract features of images: embedding, colours, silhouette, attributes, quality.
    Extract(ExtractArgs),
    /// Index every image under a folder into a catalog (resumable: unchanged images are skipped).
    Index(IndexArgs),
    /// Search a catalog by image, text or stored product; prints dupes with per-channel scores.
    Search(SearchArgs),
    /// Cut the product out of a photo: a PNG with a transparent background.
    Cutout(CutoutArgs),
    /// Manage API keys (create, list, revoke, regenerate, usage).
    Keys(KeysArgs),
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Image files (jpeg, png, webp, gif, bmp).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Operations, comma-separated: embed, colors, silhouette, cutout, attributes, quality, all.
    #[arg(long, default_value = "embed,colors,silhouette,attributes,quality", value_parser = parse_ops)]
    pub ops: Ops,
    /// Print JSON (an array with one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Which catalog and which namespace in it.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The catalog: a SQLite file, or a `postgres://` URL (built with the feature `postgres`).
    #[arg(long, value_name = "FILE|URL")]
    pub catalog: PathBuf,
    /// Account whose products these are.
    #[arg(long, default_value = "local", value_parser = parse_account)]
    pub account: String,
    /// `test` (default: experiments never touch live data) or `live`.
    #[arg(long = "env", default_value = "test", value_parser = parse_env)]
    pub environment: Environment,
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Folder to index, recursively. A product's external id is the image's path relative to
    /// this folder, its category the name of the folder holding it, its title the file stem.
    #[arg(value_name = "FOLDER")]
    pub folder: PathBuf,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Brand stored on every product indexed by this run.
    #[arg(long)]
    pub brand: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--cheaper-by` and `--exclude-own-brand` only make sense with `--product`; they are stated
/// as conflicts with the other queries because clap does not enforce `requires` towards a
/// member of a satisfied group (clap-rs/clap#4707).
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("query").required(true).args(["image", "text", "product"])))]
pub struct SearchArgs {
    /// Query image.
    #[arg(value_name = "IMAGE")]
    pub image: Option<PathBuf>,
    /// Query text (CLIP text tower), e.g. "red floral midi dress".
    #[arg(long)]
    pub text: Option<String>,
    /// Dupes of a stored product: its catalog id or its external id.
    #[arg(long, value_name = "ID")]
    pub product: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Number of results.
    #[arg(long, short = 'n', default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Only this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only this brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Never this brand (repeatable).
    #[arg(long = "exclude-brand", value_name = "BRAND")]
    pub exclude_brands: Vec<String>,
    /// Minimum price.
    #[arg(long, value_parser = parse_price)]
    pub min_price: Option<f64>,
    /// Maximum price.
    #[arg(long, value_parser = parse_price)]
    pub max_price: Option<f64>,
    /// Only this currency (ISO 4217).
    #[arg(long)]
    pub currency: Option<String>,
    /// With --product: only products at least this many percent cheaper.
    #[arg(long, value_name = "PERCENT", conflicts_with_all = ["image", "text"], value_parser = parse_percent)]
    pub cheaper_by: Option<f64>,
    /// With --product: leave out products of the same brand.
    #[arg(long, conflicts_with_all = ["image", "text"])]
    pub exclude_own_brand: bool,
    /// Leave out hits whose combined score is below this.
    #[arg(long, value_parser = parse_score)]
    pub min_score: Option<f32>,
    /// Print JSON (hits with products; stored feature vectors left out).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CutoutArgs {
    /// The photo.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Output PNG file, or `-` for standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The keys' SQLite file, or a `postgres://` URL (built with the feature `postgres`).
    #[arg(long, value_name = "FILE|URL")]
    pub db: PathBuf,
    /// File holding the HMAC pepper (hex). Otherwise DUPIFY_PEPPER, otherwise `<db>.pepper`
    /// (which `keys create` generates when it creates a new database; for a URL one of the
    /// first two is required).
    #[arg(long, value_name = "FILE")]
    pub pepper_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints the key (shown only this once) on stdout.
    Create(KeyCreateArgs),
    /// List keys (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key now.
    Revoke {
        /// Key id (from `keys list`).
        id: i64,
    },
    /// Issue a new secret for a key (same name, scopes, limits); the old one is revoked.
    Regenerate {
        /// Key id.
        id: i64,
        /// Keep the old key working this many seconds (0: revoke it now).
        #[arg(long, default_value_t = 0)]
        grace_secs: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Usage of a key per day and per month.
    Usage {
        /// Key id.
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// Descriptive name, e.g. "Production".
    #[arg(long)]
    pub name: String,
    /// `test` (fe_test_ keys) or `live` (fe_live_ keys).
    #[arg(long = "env", default_value = "test", value_parser = parse_env)]
    pub environment: dupify_keys::Environment,
    /// Scopes, comma-separated (embed, colors, silhouette, attributes, batch, catalog).
    /// None: every scope.
    #[arg(long, value_delimiter = ',', value_parser = parse_scope)]
    pub scopes: Vec<Scope>,
    /// Rate limit and monthly quota preset.
    #[arg(long, value_enum, default_value_t = TierArg::Free)]
    pub tier: TierArg,
    /// Requests per minute (overrides the tier's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_minute: Option<u32>,
    /// Requests per month (overrides the tier's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub monthly: Option<u64>,
    /// No monthly quota (overrides the tier's).
    #[arg(long, conflicts_with = "monthly")]
    pub no_monthly_cap: bool,
    /// The key expires this many days from now.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub expires_in_days: Option<u32>,
    /// Print JSON (the key and its record).
    #[arg(long)]
    pub json: bool,
}

/// The hosted plans, as command-line values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    /// 10/min, 50/month.
    Free,
    /// 60/min, 1,000/month.
    Starter,
    /// 200/min, 10,000/month.
    Pro,
    /// 1,000/min, no monthly cap.
    Unlimited,
}

impl From<TierArg> for dupify_keys::Tier {
    fn from(t: TierArg) -> Self {
        match t {
            TierArg::Free => dupify_keys::Tier::Free,
            TierArg::Starter => dupify_keys::Tier::Starter,
            TierArg::Pro => dupify_keys::Tier::Pro,
            TierArg::Unlimited => dupify_keys::Tier::Unlimited,
        }
    }
}

fn parse_ops(s: &str) -> Result<Ops, String> {
    s.parse().map_err(|e: dupify_core::Error| e.to_string())
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse().map_err(|e: dupify_core::Error| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: dupify_core::Error| e.to_string())
}

fn parse_env(s: &str) -> Result<Environment, String> {
    s.parse()
        .map_err(|e: dupify_types::ParseEnvironmentError| e.to_string())
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.trim()
        .parse()
        .map_err(|e: dupify_keys::Error| e.to_string())
}

fn parse_account(s: &str) -> Result<String, String> {
    dupify_core::catalog::Namespace::new(s, Environment::Test)
        .map(|ns| ns.account)
        .map_err(|e| e.to_string())
}

fn parse_price(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a number ≥ 0".into()),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..100.0).contains(&v) => Ok(v),
        _ => Err("must be a number in [0, 100)".into()),
    }
}

fn parse_score(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("must be a finite number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn search_needs_exactly_one_query() {
        let none = Cli::try_parse_from(["dupify", "search", "--catalog", "c.db"]);
        assert!(none.is_err());
        let two = Cli::try_parse_from([
            "dupify",
            "search",
            "a.jpg",
            "--text",
            "x",
            "--catalog",
            "c.db",
        ]);
        assert!(two.is_err());
        let one = Cli::try_parse_from([
            "dupify",
            "search",
            "--text",
            "red dress",
            "--catalog",
            "c.db",
        ]);
        assert!(one.is_ok());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["dupify", "extract", "a.jpg", "--ops", "embed,teleport"][..],
            &["dupify", "extract", "a.jpg", "--device", "tpu"],
            &["dupify", "extract", "a.jpg", "--precision", "int4"],
            &["dupify", "index", "d", "--catalog", "c.db", "--env", "prod"],
            &[
                "dupify",
                "search",
                "--text",
                "x",
                "--catalog",
                "c.db",
                "--min-price",
                "-1",
            ],
            &[
                "dupify",
                "keys",
                "--db",
                "k.db",
                "create",
                "--name",
                "n",
                "--scopes",
                "embed,fly",
            ],
        ] {
            let e = Cli::try_parse_from(args).expect_err("must be refused");
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
