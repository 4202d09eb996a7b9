//! `plughost keys`: generate a publisher's signing key pair, trust a publisher's public key for installs, revoke a
//! trusted key (disabling what it signed), list the trusted keys.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use plughost::Home;
use plughost::registry::{PublicKey, Registry, RegistryError};

use super::show::{open_registry, print_json, when};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate an ed25519 signing key pair: the secret stays in the data dir (mode 0600), the public half is
    /// written to <NAME>.pub in --out (default: the current directory).
    Generate {
        #[arg(long)]
        name: String,
        /// Where to write <NAME>.pub.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Also trust the new key for installs on this machine.
        #[arg(long)]
        trust: bool,
        /// Succeed quietly if a key with this name already exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// Trust a publisher's public key (.pub file) for installs.
    Trust {
        file: PathBuf,
        /// Trust it under another name than the file gives.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a trusted key (by name or fingerprint). Plugins it signed are disabled.
    Revoke { key: String },
    /// List trusted keys.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn keys(home: &Home, cmd: KeysCommand) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    match cmd {
        KeysCommand::Generate {
            name,
            out,
            trust,
            if_missing,
        } => {
            let secret = reg.keys_dir().join(format!("{name}.key"));
            if secret.exists() && if_missing {
                let kp = reg.signing_key(&name)?;
                if trust {
                    trust_quietly(&reg, &kp.public())?;
                }
                println!("key `{name}` exists: {}", kp.public().fingerprint());
                return Ok(ExitCode::SUCCESS);
            }
            if secret.exists() {
                bail!(
                    "a key named `{name}` already exists ({}); add --if-missing to keep it and succeed, or choose \
                     another --name",
                    secret.display()
                );
            }
            // Check where the public half goes before making a key, so a bad --out leaves nothing behind.
            if !out.is_dir() {
                bail!("--out {}: no such directory", out.display());
            }
            let public = reg.generate_key(&name)?;
            if trust {
                trust_quietly(&reg, &public)?;
            }
            let pub_path = out.join(format!("{name}.pub"));
            std::fs::write(&pub_path, public.to_line())
                .with_context(|| format!("cannot write {}", pub_path.display()))?;
            println!("generated key `{name}` {}", public.fingerprint());
            println!("  secret  {} (mode 0600, stays here)", secret.display());
            println!("  public  {} (give this to operators)", pub_path.display());
            if trust {
                println!("  trusted for installs on this machine");
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Trust { file, name } => {
            let mut key = PublicKey::read(&file)?;
            if let Some(n) = name {
                plughost::registry::keys::check_key_name(&n)?;
                key.name = n;
            }
            let rec = reg.trust(&key)?;
            println!("trusted `{}` {}", rec.name, rec.fingerprint);
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { key } => {
            let disabled = reg.revoke_key(&key)?;
            println!("revoked `{key}`");
            for id in &disabled {
                println!("  disabled plugin `{id}` (it was signed with this key)");
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { json } => {
            let keys = reg.keys()?;
            if json {
                return print_json(&keys).map(|_| ExitCode::SUCCESS);
            }
            if keys.is_empty() {
                println!("no trusted keys; `plughost keys trust <file.pub>` adds one");
            }
            let w = keys.iter().map(|k| k.name.len()).max().unwrap_or(4).max(4);
            if !keys.is_empty() {
                println!(
                    "{:<w$}  {:<24}  {:<17}  STATUS",
                    "NAME", "FINGERPRINT", "TRUSTED"
                );
            }
            for k in keys {
                let status = match k.revoked_at {
                    Some(t) => format!("revoked {}", when(t)),
                    None => "trusted".into(),
                };
                println!(
                    "{:<w$}  {:<24}  {:<17}  {status}",
                    k.name,
                    k.fingerprint,
                    when(k.trusted_at)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn trust_quietly(reg: &Registry, key: &PublicKey) -> Result<()> {
    match reg.trust(key) {
        Ok(_) | Err(RegistryError::AlreadyTrusted { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
