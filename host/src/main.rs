//! The `plughost` command line.

mod cli;
mod ledger_cli;
mod ops;
mod serve;

fn main() -> std::process::ExitCode {
    cli::main()
}
