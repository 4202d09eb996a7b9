//! The `plughost` command line.

mod cli;
mod ops;

fn main() -> std::process::ExitCode {
    cli::main()
}
