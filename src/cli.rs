//! Command-line interface: one binary, one subcommand per job.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "t2t-operator",
    version,
    about = "Declarative Microsoft 365 cross-tenant mailbox migrations"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator against the cluster in KUBECONFIG or the in-cluster config.
    Run,
    /// Print every CustomResourceDefinition as YAML (or write one file per kind with --out-dir).
    Crdgen {
        /// Write `<plural>.t2t.dev.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Serve the Microsoft 365 tenant simulator (development only).
    Sim(SimArgs),
    /// Serve the Kubernetes API emulator (development only).
    DevCluster,
    /// Emulated cluster + simulated tenants + operator in one process, kept running (development only).
    Dev,
    /// One-command end-to-end demo: a full migration on the emulated cluster and simulated tenants.
    Demo,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crdgen { out_dir } => match crate::crdgen::run(out_dir.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("crdgen: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run => not_built("run", "the controllers (issue 6)"),
        Command::Sim(args) => run_sim(args),
        Command::DevCluster => not_built("dev-cluster", "the Kubernetes API emulator (issue 5)"),
        Command::Dev => not_built("dev", "the setup controllers (issue 6)"),
        Command::Demo => not_built("demo", "the MigrationBatch controller and demo (issue 7)"),
    }
}

/// Arguments of `t2t-operator sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address of the single HTTPS listener (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: std::net::SocketAddr,
    /// Tenant fixture (YAML); see docs/simulator.md and examples/tenants.yaml.
    #[arg(long)]
    pub fixture: std::path::PathBuf,
    /// Write the generated CA certificate to DIR/ca.pem.
    #[arg(long, value_name = "DIR")]
    pub ca_out: Option<std::path::PathBuf>,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Add N generated mailboxes to the first tenant.
    #[arg(long, value_name = "N")]
    pub generate: Option<usize>,
    /// Lifetime of issued access tokens in seconds.
    #[arg(long, default_value_t = 3599)]
    pub token_lifetime: u64,
    /// CA certificate (PEM file) trusted when discovering a federated issuer's keys; repeatable.
    #[arg(long, value_name = "FILE")]
    pub trust_ca: Vec<std::path::PathBuf>,
}

#[cfg(feature = "dev")]
fn run_sim(args: SimArgs) -> ExitCode {
    use crate::sim::{Fixture, SimConfig, Simulator};
    let mut fixture = match Fixture::load(&args.fixture) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = args.generate {
        fixture.add_generated(n);
    }
    let mut config = SimConfig::new(fixture);
    config.listen = args.listen;
    config.ca_out = args.ca_out;
    config.time_scale = args.time_scale;
    config.token_lifetime = std::time::Duration::from_secs(args.token_lifetime);
    for f in &args.trust_ca {
        match std::fs::read_to_string(f) {
            Ok(p) => config.trusted_ca_pems.push(p),
            Err(e) => {
                eprintln!("sim: cannot read {}: {e}", f.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let sim = match Simulator::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sim: {e}");
                return ExitCode::FAILURE;
            }
        };
        let b = sim.base_url();
        println!("tenant simulator listening on {b}");
        println!("  identity:  {b}/{{tenant}}/oauth2/v2.0/token");
        println!("  graph:     {b}/v1.0  {b}/beta");
        println!("  exchange:  {b}/adminapi/beta/{{tenant}}/InvokeCommand");
        println!("  control:   {b}/_sim/tenants");
        for t in sim.tenants() {
            println!(
                "  tenant {} ({}) admin app {}",
                t.id, t.initial_domain, t.client_id
            );
        }
        if tokio::signal::ctrl_c().await.is_err() {
            eprintln!("sim: cannot wait for Ctrl-C");
        }
        sim.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(not(feature = "dev"))]
fn run_sim(_args: SimArgs) -> ExitCode {
    not_built("sim", "a build with the `dev` feature")
}

/// Subcommands whose issue has not landed say so plainly instead of pretending to work.
fn not_built(cmd: &str, what: &str) -> ExitCode {
    eprintln!("t2t-operator {cmd}: not built yet; it arrives with {what}.");
    ExitCode::from(2)
}
