//! A load generator for the reference server: clients writing at a fixed rate across one or
//! several server nodes (acknowledgement latency, live delivery to the rest of each tenant),
//! and push throughput (clients pushing as fast as they are answered).
//!
//! ```text
//! cargo build --release -p ferrosync-server
//! cargo run --release -p ferrosync-server --example load -- rate --clients 2000 --tenant-size 10
//! cargo run --release -p ferrosync-server --example load -- rate --postgres URL --nodes 2
//! cargo run --release -p ferrosync-server --example load -- throughput --clients 16 --batch 100 --in-flight 1 --json FILE
//! cargo run --release -p ferrosync-server --example load -- suite --postgres URL --json FILE
//! ```
//!
//! It starts the real server binary (`target/release/ferrosync-server` of the workspace, or
//! `--server-bin PATH`) on free loopback ports: one node on a fresh SQLite file in a temporary
//! directory, or `--nodes N` on a fresh database of the PostgreSQL server at `--postgres URL`
//! (a database it may create others on). Clients are spread over the nodes and authenticate
//! with JWTs the generator signs (a user per client). Everything stays on 127.0.0.1, each run
//! is bounded in clients and time, and the servers are killed when the generator exits.
//! `scripts/load.sh` runs the suite on a throwaway PostgreSQL cluster and writes
//! `bench/results/server.json`, which BENCHMARKS.md's server section is made from.

mod cluster;
mod rate;
mod socket;
mod stats;
mod throughput;

use clap::{Args, Parser, Subcommand};
use cluster::{Cluster, Database};
use ferrosync_server::storage::Durability;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The most clients one run may open.
const MAX_CLIENTS: usize = 20_000;
/// The longest a run may write, in seconds.
const MAX_SECONDS: u64 = 600;

/// Load generator for ferrosync-server.
#[derive(Debug, Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Clients writing at a fixed rate in tenants: acknowledgement latency and live delivery.
    Rate {
        #[command(flatten)]
        servers: Servers,
        /// Clients in all.
        #[arg(long, default_value_t = 2_000)]
        clients: usize,
        /// Clients per tenant.
        #[arg(long, default_value_t = 10)]
        tenant_size: usize,
        /// Writes per second per client.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds of writing.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Put each tenant's clients on one node (default: every tenant spans every node).
        #[arg(long)]
        by_tenant: bool,
    },
    /// Clients pushing as fast as they are answered, a tenant each: mutations per second.
    Throughput {
        #[command(flatten)]
        servers: Servers,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Transactions per push (one `put` each).
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Pushes each client keeps unanswered on its connection.
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
        /// Seconds of pushing.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Where to write the report as JSON too.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Every figure of BENCHMARKS.md's server section: SQLite on one node beside PostgreSQL on
    /// two, written as JSON.
    Suite {
        #[command(flatten)]
        servers: Servers,
        /// Seconds of writing of the fixed-rate runs (the search for the limit takes half).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Where to write the results.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

/// Which servers to start.
#[derive(Debug, Clone, Args)]
struct Servers {
    /// The server binary (default: target/release/ferrosync-server in the workspace).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// A PostgreSQL database URL to create the run's database from (default: SQLite).
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Server nodes (several need --postgres).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// How SQLite commits: `normal` (synchronous=NORMAL) or `full` (synchronous=FULL).
    #[arg(long, value_enum, default_value_t = Durability::Normal)]
    durability: Durability,
    /// The PostgreSQL postmaster's process id, to report its CPU use.
    #[arg(long, value_name = "PID")]
    postgres_pid: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    stats::raise_open_files();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("load: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Rate {
            servers,
            clients,
            tenant_size,
            rate,
            seconds,
            by_tenant,
        } => {
            let config = rate::Config {
                clients,
                tenant_size,
                rate,
                seconds,
                spread: !by_tenant,
            };
            check(clients, seconds)?;
            if tenant_size == 0 || !(rate > 0.0 && rate <= 100.0) {
                return Err("--tenant-size takes 1 or more, --rate 0 to 100".into());
            }
            let report = rate_run(&servers, servers.nodes, config).await?;
            print_rate(&report);
        }
        Command::Throughput {
            servers,
            clients,
            batch,
            in_flight,
            seconds,
            json,
        } => {
            check(clients, seconds)?;
            if batch == 0 || batch > 1_000 {
                return Err("--batch takes 1 to 1000".into());
            }
            if in_flight == 0 || in_flight > 16 {
                return Err("--in-flight takes 1 to 16".into());
            }
            let config = throughput::Config {
                clients,
                batch,
                in_flight,
                seconds,
            };
            let report = throughput_run(&servers, servers.nodes, config).await?;
            print_throughput(&report);
            if let Some(path) = json {
                write_json(&path, &report)?;
            }
        }
        Command::Suite {
            servers,
            seconds,
            json,
        } => {
            check(1, seconds)?;
            let results = suite(&servers, seconds).await?;
            match json {
                Some(path) => write_json(&path, &results)?,
                None => println!("{}", pretty(&results)?),
            }
        }
    }
    Ok(())
}

fn pretty(value: &impl Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    std::fs::write(path, format!("{}\n", pretty(value)?))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn check(clients: usize, seconds: u64) -> Result<(), String> {
    if clients == 0 || clients > MAX_CLIENTS {
        return Err(format!("--clients takes 1 to {MAX_CLIENTS}"));
    }
    if seconds == 0 || seconds > MAX_SECONDS {
        return Err(format!("--seconds takes 1 to {MAX_SECONDS}"));
    }
    Ok(())
}

/// The servers' binary, checked.
fn binary(servers: &Servers) -> Result<PathBuf, String> {
    let bin = match &servers.server_bin {
        Some(path) => path.clone(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/ferrosync-server"),
    };
    let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
    if !bin.is_file() {
        return Err(format!(
            "no server binary at {}: build it with `cargo build --release -p ferrosync-server` or pass --server-bin",
            bin.display()
        ));
    }
    Ok(bin)
}

fn database(servers: &Servers, nodes: usize) -> Result<Database, String> {
    match &servers.postgres {
        Some(url) => Ok(Database::Postgres(url.clone())),
        None if nodes > 1 => Err("several nodes need --postgres".into()),
        None => Ok(Database::Sqlite(servers.durability)),
    }
}

async fn rate_run(
    servers: &Servers,
    nodes: usize,
    config: rate::Config,
) -> Result<rate::Report, String> {
    let db = database(servers, nodes)?;
    let cluster = Cluster::start(&binary(servers)?, &db, nodes, 5_000).await?;
    let report = rate::run(&cluster, db.name(), config, servers.postgres_pid).await;
    warn(cluster.stop().await);
    report
}

async fn throughput_run(
    servers: &Servers,
    nodes: usize,
    config: throughput::Config,
) -> Result<throughput::Report, String> {
    let db = database(servers, nodes)?;
    let cluster = Cluster::start(&binary(servers)?, &db, nodes, 100_000).await?;
    let report = throughput::run(&cluster, &db, config, servers.postgres_pid).await;
    warn(cluster.stop().await);
    report
}

fn warn(lines: Vec<String>) {
    for line in lines {
        eprintln!("  {line}");
    }
}

/// Everything the suite measured.
#[derive(Serialize)]
struct Results {
    /// When (milliseconds since the epoch).
    date_ms: u64,
    /// CPUs of the machine (shared with the generator and PostgreSQL).
    cpus: usize,
    /// PostgreSQL's version and the settings that matter.
    postgres: Vec<(String, String)>,
    /// Push throughput: SQLite (default durability, then `--durability full`) beside PostgreSQL.
    throughput: Vec<throughput::Report>,
    /// The fixed-rate runs at the targets' sizes.
    rate: Vec<rate::Report>,
    /// Fixed-rate runs (tenants of 10) of more clients until one does not hold, or of fewer
    /// until one does.
    limit: Vec<rate::Report>,
}

/// SQLite on one node and PostgreSQL on two, side by side.
async fn suite(servers: &Servers, seconds: u64) -> Result<Results, String> {
    let Some(url) = &servers.postgres else {
        return Err("the suite needs --postgres".into());
    };
    let postgres = postgres_settings(url).await?;
    let sqlite = Servers {
        postgres: None,
        durability: Durability::Normal,
        ..servers.clone()
    };
    let sqlite_full = Servers {
        durability: Durability::Full,
        ..sqlite.clone()
    };
    let backends = [(&sqlite, 1), (servers, 2)];
    let mut results = Results {
        date_ms: stats::now_ms(),
        cpus: stats::cpus(),
        postgres,
        throughput: Vec::new(),
        rate: Vec::new(),
        limit: Vec::new(),
    };
    // SQLite's two durabilities one after the other, then PostgreSQL.
    for (servers, nodes) in [(&sqlite, 1), (&sqlite_full, 1), (servers, 2)] {
        let config = throughput::Config {
            clients: 16,
            batch: 100,
            in_flight: 1,
            seconds: 10,
        };
        let report = throughput_run(servers, nodes, config).await?;
        print_throughput(&report);
        results.throughput.push(report);
    }
    // The targets' sizes: each tenant spans both nodes, and (PostgreSQL) each on one node.
    let runs = [
        (&sqlite, 1, 2_000, 10, true),
        (servers, 2, 2_000, 10, true),
        (servers, 2, 2_000, 10, false),
        (&sqlite, 1, 1_000, 1_000, true),
        (servers, 2, 1_000, 1_000, true),
    ];
    for (servers, nodes, clients, tenant_size, spread) in runs {
        let config = rate::Config {
            clients,
            tenant_size,
            rate: 1.0,
            seconds,
            spread,
        };
        let report = rate_run(servers, nodes, config).await?;
        print_rate(&report);
        results.rate.push(report);
    }
    // Where it stops holding (tenants of 10 spanning the nodes): up from 2,000 clients while
    // it holds, or down while it does not.
    for (n, (servers, nodes)) in backends.into_iter().enumerate() {
        let held = results.rate[n].holds;
        let sizes: Vec<usize> = if held {
            (3_000..=8_000).step_by(1_000).collect()
        } else {
            vec![1_500, 1_000, 500, 250]
        };
        for clients in sizes {
            let config = rate::Config {
                clients,
                tenant_size: 10,
                rate: 1.0,
                seconds: seconds / 2,
                spread: true,
            };
            let report = match rate_run(servers, nodes, config).await {
                Ok(report) => report,
                Err(error) => {
                    eprintln!("load: {clients} clients failed: {error}");
                    break;
                }
            };
            print_rate(&report);
            let done = report.holds != held;
            results.limit.push(report);
            if done {
                break;
            }
        }
    }
    Ok(results)
}

/// PostgreSQL's version and the settings that bear on write latency.
async fn postgres_settings(url: &str) -> Result<Vec<(String, String)>, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    tokio::spawn(connection);
    let mut settings = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_level",
        "shared_buffers",
        "max_connections",
    ] {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(|e| format!("SHOW {name}: {e}"))?;
        settings.push((name.to_owned(), row.get(0)));
    }
    Ok(settings)
}

fn print_rate(r: &rate::Report) {
    println!(
        "rate: {} x{} | {} clients, tenants of {} ({}), {}/s each, {} s | {} writes ({}/s) | ack p50 {} ms p99 {} ms | delivery p50 {} ms p99 {} ms max {} ms, {} % within 1 s, {} missing | {} frames, {} pulls | cpu: servers {} %, postgres {:?} %, generator {} %, machine {} %, stall {:?} % | holds: {}",
        r.database, r.nodes, r.config.clients, r.config.tenant_size,
        if r.config.spread { "spanning the nodes" } else { "one node each" }, r.config.rate, r.config.seconds,
        r.writes, r.writes_per_second, r.ack.p50_ms, r.ack.p99_ms, r.delivery.p50_ms,
        r.delivery.p99_ms, r.delivery.max_ms, r.delivered_within_1s_pct, r.deliveries_missing,
        r.live_frames, r.pulls, r.cpu.servers_pct, r.cpu.postgres_pct, r.cpu.generator_pct,
        r.cpu.machine_pct, r.cpu.cpu_stall_pct, r.holds
    );
}

fn print_throughput(r: &throughput::Report) {
    println!(
        "throughput: {} ({} durability) x{} | {} clients, pushes of {}, {} in flight, {} s | {} mutations/s | push p50 {} ms p99 {} ms | cpu: servers {} %, postgres {:?} %, generator {} %, machine {} %",
        r.database, r.durability, r.nodes, r.config.clients, r.config.batch, r.config.in_flight, r.config.seconds,
        r.mutations_per_second, r.push.p50_ms, r.push.p99_ms, r.cpu.servers_pct,
        r.cpu.postgres_pct, r.cpu.generator_pct, r.cpu.machine_pct
    );
}
