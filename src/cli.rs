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
    Run(RunArgs),
    /// Print every CustomResourceDefinition as YAML (or write one file per kind with --out-dir).
    Crdgen {
        /// Write `<plural>.t2t.dev.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Serve the Microsoft 365 tenant simulator (development only).
    Sim(SimArgs),
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
    Dev(DevArgs),
    /// One-command end-to-end demo: a full migration on the emulated cluster and simulated tenants.
    Demo(DemoArgs),
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
        Command::Run(args) => run_operator(args),
        Command::Sim(args) => run_sim(args),
        #[cfg(feature = "dev")]
        Command::DevCluster {
            listen,
            kubeconfig,
            state_dir,
            tls,
        } => dev_cluster(listen, kubeconfig, state_dir, tls),
        #[cfg(not(feature = "dev"))]
        Command::DevCluster { .. } => not_built("dev-cluster", "the `dev` feature"),
        Command::Dev(args) => run_dev(args),
        Command::Demo(args) => run_demo(args),
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

/// Arguments of `t2t-operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address of the metrics and health server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value = "0.0.0.0:8080", env = "T2T_METRICS_ADDR")]
    pub metrics_addr: std::net::SocketAddr,
    /// Log format.
    #[arg(long, default_value = "json", value_parser = ["json", "text"], env = "T2T_LOG_FORMAT")]
    pub log_format: String,
    /// Never write to a tenant: observe and report only.
    #[arg(long, env = "T2T_READ_ONLY")]
    pub read_only: bool,
    /// PEM file with the RSA public key Exchange uses for SecureString parameters.
    #[arg(long, env = "T2T_EXCHANGE_PUBLIC_KEY")]
    pub exchange_public_key: Option<std::path::PathBuf>,
    /// Tenant writes per reconcile pass.
    #[arg(long, default_value_t = 8)]
    pub max_actions_per_pass: usize,
    /// Poll interval (seconds) while tenant work is in flight (moves syncing, users preparing).
    #[arg(long, default_value_t = 60, env = "T2T_ACTIVE_POLL_SECONDS")]
    pub active_poll_seconds: u64,
    /// Resync interval (seconds) of objects that are Ready and idle.
    #[arg(long, default_value_t = 1800, env = "T2T_IDLE_RESYNC_SECONDS")]
    pub idle_resync_seconds: u64,
    /// Leader election on the Lease `t2t-operator-leader` (needed with more than one replica).
    #[arg(long, env = "T2T_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: POD_NAMESPACE, else t2t-system).
    #[arg(long, env = "POD_NAMESPACE", default_value = "t2t-system")]
    pub lease_namespace: String,
}

/// Arguments of `t2t-operator dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Write a kubeconfig for kubectl here.
    #[arg(long, default_value = "t2t-dev.kubeconfig")]
    pub kubeconfig: std::path::PathBuf,
    /// Address of the emulated Kubernetes API.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: std::net::SocketAddr,
    /// Address of the tenant simulator (examples/02-tenantpair.yaml points at 127.0.0.1:8443).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub sim_listen: std::net::SocketAddr,
    /// Simulator fixture.
    #[arg(long, default_value = "examples/tenants.yaml")]
    pub fixture: std::path::PathBuf,
    /// Simulated seconds per real second (3600: an hour of syncing per second).
    #[arg(long, default_value_t = 3600.0)]
    pub time_scale: f64,
}

#[cfg(feature = "dev")]
fn run_dev(args: DevArgs) -> ExitCode {
    init_logging(false, "info,kube_runtime=warn");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dev: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let fixture = match crate::sim::Fixture::load(&args.fixture) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("dev: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut opts = crate::dev::DevOptions::new(fixture);
        opts.emu_listen = args.listen;
        opts.sim_listen = args.sim_listen;
        opts.time_scale = args.time_scale;
        let mut env = match crate::dev::DevEnv::start(opts).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("dev: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = env.emu.write_kubeconfig(&args.kubeconfig) {
            eprintln!("dev: {e}");
            return ExitCode::FAILURE;
        }
        if let Err(e) = env.seed_namespace("t2t-demo").await {
            eprintln!("dev: {e}");
            return ExitCode::FAILURE;
        }
        env.start_operator();
        let kc = args.kubeconfig.display();
        println!("emulated cluster:  {} (kubeconfig: {kc})", env.emu.url());
        println!("simulated tenants: {} (CA in ConfigMap t2t-demo/t2t-sim-ca)", env.sim.base_url());
        println!("operator:          running (Ctrl-C stops everything)");
        println!();
        println!("  export KUBECONFIG={kc}");
        println!("  kubectl apply -f examples/");
        println!("  kubectl get t2t -n t2t-demo");
        println!("  kubectl patch mb wave-1 -n t2t-demo --type merge -p '{{\"spec\":{{\"completion\":{{\"approved\":true}}}}}}'");
        let _ = tokio::signal::ctrl_c().await;
        println!("stopping");
        env.shutdown().await;
        ExitCode::SUCCESS
    })
}

#[cfg(not(feature = "dev"))]
fn run_dev(_args: DevArgs) -> ExitCode {
    not_built("dev", "a build with the `dev` feature")
}

fn run_operator(args: RunArgs) -> ExitCode {
    init_logging(args.log_format == "json", "info,kube_runtime=warn");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("run: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::operator::run_main(crate::operator::MainOptions {
        metrics_addr: args.metrics_addr,
        read_only: args.read_only,
        exchange_public_key: args.exchange_public_key,
        max_actions_per_pass: args.max_actions_per_pass,
        active_poll: std::time::Duration::from_secs(args.active_poll_seconds.max(1)),
        idle_resync: std::time::Duration::from_secs(args.idle_resync_seconds.max(1)),
        leader_elect: args.leader_elect.then_some(args.lease_namespace),
    })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            eprintln!("run: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Arguments of `t2t-operator demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Directory with the example manifests and the simulator fixture (tenants.yaml).
    #[arg(long, default_value = "examples")]
    pub examples: std::path::PathBuf,
    /// Generated mailboxes moved in a second batch (listed in a ConfigMap).
    #[arg(long, default_value_t = 50)]
    pub generate: usize,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 7200.0)]
    pub time_scale: f64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[cfg(feature = "dev")]
fn run_demo(args: DemoArgs) -> ExitCode {
    init_logging(false, "warn");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = crate::demo::DemoOptions {
        examples: args.examples,
        generate: args.generate,
        time_scale: args.time_scale,
        timeout: std::time::Duration::from_secs(args.timeout),
    };
    match rt.block_on(crate::demo::run(opts)) {
        Ok((done, total)) if done == total && total > 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "dev"))]
fn run_demo(_args: DemoArgs) -> ExitCode {
    not_built("demo", "a build with the `dev` feature")
}

/// Logging: `RUST_LOG` wins; `json` selects structured output.
pub fn init_logging(json: bool, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Development subcommands in a build without the `dev` feature say so plainly.
#[cfg(not(feature = "dev"))]
fn not_built(cmd: &str, what: &str) -> ExitCode {
    eprintln!("t2t-operator {cmd}: not built yet; it arrives with {what}.");
    ExitCode::from(2)
}
