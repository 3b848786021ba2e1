//! The `herald` command line. A thin front end over the `herald` library: each
//! subcommand lives in its own file.

mod bench;
mod consume;
mod formats;
mod input;
mod lines;
mod mock;
mod produce;
mod report;
mod stats;
mod transactions;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// herald: a Kafka producer.
#[derive(Parser, Debug)]
#[command(name = "herald", version, about, long_about = None)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produce records read from stdin or a file, one per line. Without
    /// --bootstrap-server, into an embedded cluster, showing where each record went.
    Produce(Box<produce::ProduceArgs>),
    /// Print every record of a topic with its partition, offset, timestamp, key,
    /// headers and value.
    Consume(consume::ConsumeArgs),
    /// Run an embedded Kafka cluster any Kafka client can use; prints its address.
    Mock(mock::MockArgs),
    /// Measure how fast herald produces: records/s, MiB/s, latency, CPU per record.
    Bench(bench::BenchArgs),
    /// List every producer property -X takes (Java's names, librdkafka's, defaults)
    /// as a Markdown table (kcat's -X list).
    Properties,
}

/// Why a command could not run at all (as opposed to records that failed).
#[derive(Debug)]
pub enum CliError {
    /// A bad argument or input file.
    Usage(String),
    /// The library refused (e.g. an invalid producer property).
    Herald(herald::Error),
}

impl CliError {
    fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Herald(e) => write!(f, "{e}"),
        }
    }
}

impl From<herald::Error> for CliError {
    fn from(e: herald::Error) -> CliError {
        CliError::Herald(e)
    }
}

/// With glibc, each thread that allocates may get a malloc arena of its own (up to
/// 8 per core), and memory freed in one is not reused by another: with the
/// producer's compression workers on tokio's blocking pool, peak RSS grew ~25 MiB
/// past what the producer holds (1 KiB records, lz4/zstd). Two arenas keep the
/// process within `buffer.memory` + 32 MiB. `MALLOC_ARENA_MAX` in the environment
/// still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a glibc tunable; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // Warnings alone read as the command's own messages; -v adds time and source.
    if cli.verbose == 0 {
        fmt.without_time().with_target(false).init();
    } else {
        fmt.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Produce(args) => produce::run(*args).await,
            Command::Consume(args) => consume::run(args).await,
            Command::Mock(args) => mock::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Properties => {
                print!("{}", herald::config::properties_markdown());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
