//! The `plughost` command line.

mod author;
mod cli;
mod ledger_cli;
mod ops;
mod serve;

fn main() -> std::process::ExitCode {
    cli::main()
}
