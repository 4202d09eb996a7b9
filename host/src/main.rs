//! The `plughost` command line.

mod author;
mod cli;
mod ops;

fn main() -> std::process::ExitCode {
    cli::main()
}
