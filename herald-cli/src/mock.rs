//! `herald mock`: the embedded cluster as a standalone server any Kafka client can use.

use std::process::ExitCode;

use herald::mock::MockCluster;

use crate::CliError;

/// Arguments of `herald mock`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  herald mock --brokers 3 --partitions 6\n  \
    # then, elsewhere: herald produce -b <printed address> -t demo < examples/trucks.txt")]
pub struct MockArgs {
    /// How many brokers.
    #[arg(long, default_value_t = 1)]
    pub brokers: usize,

    /// Partitions of topics created on first use (auto-creation is on).
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,

    /// Listen on PORT, PORT+1, ... instead of ports the OS picks.
    #[arg(long)]
    pub port: Option<u16>,

    /// Create this topic at start (repeatable): NAME or NAME:PARTITIONS.
    #[arg(short = 't', long = "topic", value_name = "NAME[:PARTITIONS]")]
    pub topics: Vec<String>,

    /// Refuse unknown topics instead of creating them on first use.
    #[arg(long)]
    pub no_auto_create: bool,

    /// Acknowledge every valid batch without storing it (offsets still advance): for
    /// measuring a producer's own ceiling with `herald bench`.
    #[arg(long)]
    pub discard: bool,

    /// The transaction protocol the cluster finalizes (the `transaction.version`
    /// feature, KIP-890): 2 as Kafka 4.x (producers add partitions by producing
    /// to them, and each commit or abort bumps the producer epoch), 1 as Kafka 3.9
    /// (partitions are added with AddPartitionsToTxn first).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i16).range(0..=2))]
    pub transaction_version: i16,
}

pub async fn run(args: MockArgs) -> Result<ExitCode, CliError> {
    let mut b = MockCluster::builder()
        .brokers(args.brokers)
        .default_partitions(args.partitions)
        .auto_create_topics(!args.no_auto_create)
        .transaction_version(args.transaction_version);
    if let Some(p) = args.port {
        b = b.base_port(p);
    }
    let cluster = b.start().await?;
    cluster.set_store_records(!args.discard);
    for t in &args.topics {
        let (name, n) = match t.split_once(':') {
            Some((name, n)) => {
                (name, n.parse().map_err(|_| CliError::usage(format!("--topic {t}: bad partition count")))?)
            }
            None => (t.as_str(), args.partitions),
        };
        cluster.create_topic(name, n)?;
    }
    // The address alone on stdout, for scripts: `B=$(herald mock ... | head -1)`.
    println!("{}", cluster.bootstrap());
    eprintln!(
        "herald mock: {} broker(s) on {}; {}. Ctrl-C stops it (records are kept in memory only).",
        args.brokers,
        cluster.bootstrap(),
        if args.no_auto_create {
            "unknown topics are refused".to_owned()
        } else {
            format!("topics are created on first use with {} partitions", args.partitions)
        }
    );
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown();
    Ok(ExitCode::SUCCESS)
}
