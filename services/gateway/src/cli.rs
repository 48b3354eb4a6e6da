//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard_config::{Config, EnvVars, Overrides};

use crate::serve::Role;

/// Self-hosted, feedback-driven LLM router.
///
/// Without a subcommand, runs `serve`: every role in one process on the embedded log and store.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    /// A configuration file (TOML) layered over the compiled-in defaults; repeatable, later
    /// files win. Environment variables SWITCHYARD__SECTION__KEY override files.
    #[arg(long = "config", value_name = "FILE", global = true)]
    pub config: Vec<PathBuf>,

    /// The data directory (embedded log and store). Overrides `data_dir` in the configuration.
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process (single-node mode; the default).
    Serve(ListenArgs),
    /// Run the HTTP ingress role only (distributed mode; stateless, run N replicas).
    Ingress(ListenArgs),
    /// Run one stream processor (distributed mode; scales by partitions).
    Stream {
        /// The processor.
        #[arg(value_enum)]
        name: StreamName,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Run the routing-table projector (distributed mode).
    Projector(ListenArgs),
    /// Run the Parquet sink (distributed mode).
    Sink(ListenArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Validate the configuration and print the effective values.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Decision exports: check a JSONL export's trailer, or export from the data directory.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Re-read the log and recompute every decision in a window from its recorded inputs;
    /// verify trace signatures and the constraints hash chains. Exits non-zero on any mismatch.
    Audit(AuditArgs),
    /// Speak the routing simulator's stdio protocol (../shared/sim): the real router and
    /// feedback loop on the simulator's virtual time. Use as
    /// `routing_sim.py run --router-cmd "switchyard sim"`.
    Sim(SimArgs),
    /// Re-read one topic from an offset or a time, on either backend, through the same
    /// decoding path as the processors; one JSON line per record on stdout.
    Replay(ReplayArgs),
    /// Run SQL over the Parquet exports (tables decisions, requests, responses, feedback,
    /// judge_scores); prints a table, or CSV, JSON or Parquet.
    Sql(SqlArgs),
}

/// Settings of `switchyard replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The topic: requests, responses, decisions, feedback, judge-scores, pins, constraints,
    /// control, routing-table, dead-letter.
    #[arg(long)]
    pub topic: String,
    /// Start: an offset (digits only) in every partition, or a time (RFC 3339, a date, `now`,
    /// an offset from now like `-24h`).
    #[arg(long, allow_hyphen_values = true, default_value = "0")]
    pub from: String,
    /// End (exclusive), same forms; default: the end of each partition when the replay starts.
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
}

/// Settings of `switchyard sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT route, count(*) FROM decisions GROUP BY route".
    pub query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    pub format: SqlFormat,
    /// Write the result to FILE instead of stdout (required for parquet).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only this org's rows (default: every org's).
    #[arg(long)]
    pub org: Option<String>,
}

/// Output formats of `switchyard sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqlFormat {
    /// An ASCII table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of row objects.
    Json,
    /// One Parquet file (needs --output).
    Parquet,
}

/// Settings of `switchyard sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The routes' min_confidence.
    #[arg(long, default_value_t = 0.8)]
    pub min_confidence: f64,
    /// The routes' rollback_threshold (regressions in the window before an automatic pin).
    #[arg(long, default_value_t = 3)]
    pub rollback_threshold: i64,
    /// The routes' explore_fraction: share of requests mirrored to a model lacking evidence.
    #[arg(long, default_value_t = 0.1)]
    pub explore: f64,
    /// Org feedback samples after which a model is no longer explored.
    #[arg(long, default_value_t = 30)]
    pub explore_until: u64,
    /// Least virtual seconds between two routing-table snapshots.
    #[arg(long, default_value_t = 300)]
    pub publish_interval_s: u64,
    /// The projector's rolling window, in hours (also how long an automatic rollback pins).
    #[arg(long, default_value_t = 24)]
    pub window_hours: u64,
    /// The projector's time bucket, in hours (regressions are tested per bucket).
    #[arg(long, default_value_t = 1)]
    pub bucket_hours: u64,
    /// How long an automatic rollback pins its route, in hours (default: one window). When
    /// the pin lapses the route routes again without the offending model while its
    /// regressions remain in the window.
    #[arg(long)]
    pub rollback_pin_hours: Option<u64>,
    /// Print one decision's candidate table on stderr every N requests (0 = never).
    #[arg(long, default_value_t = 0)]
    pub debug_every: u64,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Check a JSONL export (plain or gzip) against its trailer: row count and SHA-256.
    Verify {
        /// The export file.
        file: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export an org's decision traces as JSONL from the data directory (server stopped); the
    /// same file as GET /v1/export/decisions.
    Decisions {
        /// The organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// Window start: RFC 3339, a date, microseconds since the epoch, `now` or `-24h`.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// Window end (exclusive), same forms.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Only this route.
        #[arg(long)]
        route: Option<String>,
        /// The output file (`-` = stdout); a `.gz` name compresses.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Gzip-compress the output.
        #[arg(long)]
        gzip: bool,
    },
}

/// Settings of `switchyard audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Window start: RFC 3339, a date, microseconds since the epoch, `now` or an offset like
    /// `-24h`. Default: the start of the log.
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Window end (exclusive), same forms. Default: the end of the log.
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Write the full report as JSON to FILE (`-` = stdout, instead of the text summary).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A JWK set (GET /v1/keys) with more keys that verify trace signatures; repeatable.
    #[arg(long, value_name = "FILE")]
    pub jwks: Vec<PathBuf>,
    /// Most findings printed as text.
    #[arg(long, default_value_t = 50)]
    pub max_printed: usize,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on (overrides `server.listen`). Non-ingress roles serve only
    /// /healthz, /readyz and /metrics there.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// The stream processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamName {
    /// Session-NPS propagation: one rating to every decision of the session.
    SessionNps,
    /// LLM-as-judge scoring of sampled responses.
    Judge,
    /// Rolling windows, regression detection and automatic rollback (the projector's fold:
    /// rollback needs the same windows, so this is the projector role under its other name).
    Regression,
    /// The decisions read model (`GET /v1/decisions`): traces joined with outcomes and feedback.
    Decisions,
    /// The webhook export: decision batches POSTed to `[webhooks.orgs.<org>]`, HMAC-signed.
    Webhook,
}

impl StreamName {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamName::SessionNps => "session-nps",
            StreamName::Judge => "judge",
            StreamName::Regression => "regression",
            StreamName::Decisions => "decisions",
            StreamName::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key for an organisation; prints the key on the last line.
    Create {
        /// The organisation (1-64 of a-z 0-9 - _).
        #[arg(long)]
        org: String,
        /// Allow the admin API (routes, pins, constraints, SQL).
        #[arg(long)]
        admin: bool,
        /// The route used when a request names none.
        #[arg(long, value_name = "ROUTE")]
        default_route: Option<String>,
        /// A label to recognise the key by.
        #[arg(long)]
        label: Option<String>,
        /// Requests per minute the key may make (unlimited when not given).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        rpm: Option<u64>,
        /// Tokens (prompt + completion) per minute the key may use (unlimited when not given).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        tpm: Option<u64>,
    },
    /// List API keys (ids and owners, never secrets).
    List,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; exit non-zero with the offending key if invalid.
    Check,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut overrides = Overrides::default();
    if let Some(dir) = &cli.data_dir {
        overrides = overrides.with_data_dir(dir);
    }
    Ok(switchyard_config::load_with(
        &cli.config,
        EnvVars::from_process(),
        &overrides,
    )?)
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli)?;
    match cli.command {
        None => crate::serve::run(config, &[Role::All], None).await,
        Some(Command::Serve(args)) => crate::serve::run(config, &[Role::All], args.listen).await,
        Some(Command::Ingress(args)) => {
            crate::serve::run(config, &[Role::Ingress], args.listen).await
        }
        Some(Command::Stream { name, listen }) => {
            crate::serve::run(config, &[Role::Stream(name)], listen.listen).await
        }
        Some(Command::Projector(args)) => {
            crate::serve::run(config, &[Role::Projector], args.listen).await
        }
        Some(Command::Sink(args)) => crate::serve::run(config, &[Role::Sink], args.listen).await,
        Some(Command::Keys(KeysCommand::Create {
            org,
            admin,
            default_route,
            label,
            rpm,
            tpm,
        })) => {
            let limits = switchyard_ingress::limits::KeyLimits {
                requests_per_minute: rpm,
                tokens_per_minute: tpm,
            };
            crate::keys::create(&config, &org, admin, default_route, label, limits).await
        }
        Some(Command::Keys(KeysCommand::List)) => crate::keys::list(&config).await,
        Some(Command::Sim(args)) => crate::sim::run(&config, &args).await,
        Some(Command::Export(ExportCommand::Verify { file, json })) => {
            crate::export::verify_file(&file, json)
        }
        Some(Command::Export(ExportCommand::Decisions {
            org,
            from,
            to,
            route,
            output,
            gzip,
        })) => {
            crate::export::decisions(
                &config,
                &crate::export::DecisionsExport {
                    org: &org,
                    from: from.as_deref(),
                    to: to.as_deref(),
                    route: route.as_deref(),
                    output: &output,
                    gzip,
                },
            )
            .await
        }
        Some(Command::Audit(args)) => {
            crate::audit::run(
                &config,
                &crate::audit::AuditOptions {
                    from: args.from,
                    to: args.to,
                    json: args.json,
                    jwks: args.jwks,
                    max_printed: args.max_printed,
                },
            )
            .await
        }
        Some(Command::Sql(args)) => crate::sql::run(&config, &args).await,
        Some(Command::Replay(args)) => crate::replay::run(&config, &args).await,
        Some(Command::Config(ConfigCommand::Check)) => {
            let mut out = std::io::stdout().lock();
            std::io::Write::write_fmt(
                &mut out,
                format_args!(
                    "config ok: data_dir {}, listen {}\n",
                    config.data_dir.display(),
                    config.server.listen
                ),
            )
            .context("write to stdout")
        }
    }
}
