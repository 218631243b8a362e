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
    Sim,
    /// Serve the Kubernetes API emulator (development only).
    DevCluster {
        /// Address to serve on, e.g. 127.0.0.1:6443 (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// Write a kubeconfig for kubectl and kube-rs here.
        #[arg(long)]
        kubeconfig: Option<std::path::PathBuf>,
        /// Keep objects in this directory across restarts.
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
        /// Serve HTTPS with a generated CA (written into the kubeconfig).
        #[arg(long)]
        tls: bool,
    },
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
        Command::Sim => not_built("sim", "the tenant simulator (issue 3)"),
        #[cfg(feature = "dev")]
        Command::DevCluster {
            listen,
            kubeconfig,
            state_dir,
            tls,
        } => dev_cluster(listen, kubeconfig, state_dir, tls),
        #[cfg(not(feature = "dev"))]
        Command::DevCluster { .. } => not_built("dev-cluster", "the `dev` feature"),
        Command::Dev => not_built("dev", "the setup controllers (issue 6)"),
        Command::Demo => not_built("demo", "the MigrationBatch controller and demo (issue 7)"),
    }
}

/// Serves the Kubernetes API emulator until Ctrl-C.
#[cfg(feature = "dev")]
fn dev_cluster(
    listen: std::net::SocketAddr,
    kubeconfig: Option<std::path::PathBuf>,
    state_dir: Option<std::path::PathBuf>,
    tls: bool,
) -> ExitCode {
    use crate::kubeemu::{KubeEmu, KubeEmuConfig};
    // RUST_LOG=t2t_operator::kubeemu=debug logs every request.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dev-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let config = KubeEmuConfig {
            listen,
            persist_dir: state_dir,
            tls,
            ..KubeEmuConfig::default()
        };
        let emu = match KubeEmu::start(config).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("dev-cluster: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(path) = &kubeconfig {
            if let Err(e) = emu.write_kubeconfig(path) {
                eprintln!("dev-cluster: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!("dev-cluster: kubeconfig written to {}", path.display());
        }
        eprintln!("dev-cluster: serving the Kubernetes API on {}", emu.url());
        let _ = tokio::signal::ctrl_c().await;
        emu.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Subcommands whose issue has not landed say so plainly instead of pretending to work.
fn not_built(cmd: &str, what: &str) -> ExitCode {
    eprintln!("t2t-operator {cmd}: not built yet; it arrives with {what}.");
    ExitCode::from(2)
}
