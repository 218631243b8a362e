use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = t2t_operator::cli::Cli::parse();
    t2t_operator::cli::run(cli)
}
