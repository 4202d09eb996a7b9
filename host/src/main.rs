//! The `plughost` command line.

mod author;
mod cli;

// Stores are torn down on the standby thread after calls made on another: mimalloc frees across threads without
// the arena locking glibc's allocator does (on 2 vCPUs a contended lock's futex wakeup costs 10-15 µs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
