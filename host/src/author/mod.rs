//! Plugin authoring: `plughost new`, `build`, `test`, `dev`, `componentize` and `toolchain`. These are the only commands
//! that run other programs (the pinned guest toolchains); none of them touches installed plugins.

pub mod build;
pub mod cache;
pub mod cbind;
pub mod componentize;
pub mod contract;
pub mod dev;
pub mod new;
pub mod project;
pub mod sdk;
pub mod test;
pub mod toolchain;
pub mod world;

use std::process::ExitCode;

use anyhow::Result;
use plughost::Home;

#[derive(clap::Subcommand, Debug)]
pub enum ToolchainCommand {
    /// Install the pinned toolchains (all, or the ones named) into $PLUGHOST_TOOLCHAINS or <data dir>/toolchains.
    Install {
        #[arg(value_enum)]
        toolchains: Vec<toolchain::Toolchain>,
    },
    /// Show the pinned versions, where they live and whether they are installed.
    List {
        /// Print JSON: `{ "dir": …, "toolchains": [{ "name", "pins", "installed" }] }`.
        #[arg(long)]
        json: bool,
    },
}

pub fn toolchain(home: &Home, cmd: ToolchainCommand) -> Result<ExitCode> {
    match cmd {
        ToolchainCommand::Install { toolchains } => {
            let list = if toolchains.is_empty() {
                toolchain::Toolchain::ALL.to_vec()
            } else {
                toolchains
            };
            for t in list {
                toolchain::ensure(home, t)?;
                println!("{:<7} {} — installed", t.name(), t.pins());
            }
        }
        ToolchainCommand::List { json: true } => {
            let toolchains: Vec<serde_json::Value> = toolchain::Toolchain::ALL
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name(),
                        "pins": t.pins(),
                        "installed": toolchain::installed(home, *t),
                    })
                })
                .collect();
            let v = serde_json::json!({
                "dir": toolchain::root(home),
                "toolchains": toolchains,
                "rust_targets": ["wasm32-wasip2", "wasm32-unknown-unknown"],
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ToolchainCommand::List { json: false } => {
            println!("toolchain dir: {}", toolchain::root(home).display());
            for t in toolchain::Toolchain::ALL {
                let state = if toolchain::installed(home, t) {
                    "installed"
                } else {
                    "not installed (installed on first use)"
                };
                println!("{:<7} {:<50} {state}", t.name(), t.pins());
            }
            println!(
                "rust    rustup targets wasm32-wasip2, and wasm32-unknown-unknown for lean plugins (scripts/setup.sh adds both)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
