//! What a packager ships beside the binary, generated from the clap tree so it never goes stale: shell completions
//! (`plughost completions bash|zsh|fish`) and the man page (`plughost man`).

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap_complete::Shell;

/// The shells `plughost completions` writes for.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Writes the completion script for `shell` to stdout.
pub fn completions(mut cmd: clap::Command, shell: CompletionShell) -> Result<ExitCode> {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "plughost", &mut out);
    print!("{}", String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}

/// Writes the man page (roff, section 1) to stdout: `plughost man > plughost.1`.
pub fn man(cmd: clap::Command) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering the man page")?;
    print!("{}", String::from_utf8_lossy(&out));
    Ok(ExitCode::SUCCESS)
}
