//! The `plughost` command line.

// Every command prints through these, not std's (they shadow `println!`/`print!` in every module below): a reader
// that went away (`plughost info ID | head -8`) ends the process quietly instead of panicking on EPIPE.
macro_rules! println {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

mod author;
mod cli;

/// The exit code of a command whose stdout was closed under it, as a shell reports a process ended by SIGPIPE.
const CLOSED_STDOUT: u8 = 141;

/// Writes to stdout. If the reader has gone (EPIPE), the process exits at once with [`CLOSED_STDOUT`] and says
/// nothing: whatever the command did is done and recorded before it prints. Any other write error is exit 2, named.
fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(&e)
    }
}

fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(CLOSED_STDOUT))
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(2)
}

// Stores are torn down on the standby thread after calls made on another: mimalloc frees across threads without
// the arena locking glibc's allocator does (on 2 vCPUs a contended lock's futex wakeup costs 10-15 µs).
// Built with `no_thp` (workspace Cargo.toml): mimalloc does not ask for transparent huge pages, so a touched 4 KiB
// page of its arena is 4 KiB of RSS, not 2 MiB. With them the gateway's heap was ~22 MiB after 1,000 calls and
// grew by 3-20 MiB over the next 59,000 in 2 MiB steps; without, ~8 MiB and +3-5 MiB, for the same CPU per call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
