//! The publisher's and operator's registry commands: `plughost push` (a component and its signature to an OCI
//! registry) and `plughost registry login|logout` (credentials in the data dir, mode 0600).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use plughost::distribution::{Credentials, CredentialsStore, oci};
use plughost::registry::SignatureFile;
use plughost::units::human_bytes;
use plughost::{Home, Host};

use super::fetch::{RegistryArgs, sig_path};
use super::publish::{declared_capabilities, describe_file};
use super::show::open_registry;

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The component to push.
    pub file: PathBuf,
    /// Where: oci://REGISTRY/REPOSITORY:TAG.
    pub reference: String,
    /// Sign it now with this key (a key name in the data dir, or a .key file). Without --key, FILE.sig is pushed.
    #[arg(long)]
    pub key: Option<String>,
    /// With --key: request a specific grant instead of the bare capability (as `plughost sign --request`).
    #[arg(long = "request", value_name = "GRANT")]
    pub requests: Vec<String>,
    /// Push without a signature (installs of it then need --allow-unsigned).
    #[arg(long)]
    pub allow_unsigned: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Keep credentials for a registry in the data dir (mode 0600). The password is read from stdin or a prompt.
    Login {
        /// The registry, as in its references: HOST[:PORT].
        registry: String,
        #[arg(long, short = 'u')]
        username: String,
    },
    /// Forget a registry's credentials.
    Logout { registry: String },
}

pub async fn push(home: &Home, args: PushArgs) -> Result<ExitCode> {
    let reference = oci::parse_reference(&args.reference)?;
    if reference.digest().is_some() {
        bail!(
            "push to a tag (oci://REGISTRY/REPOSITORY:TAG): a digest is what the registry computes"
        );
    }
    let host = Host::open(home)?;
    let (bytes, info, manifest) = describe_file(&host, &args.file).await?;
    let imports: Vec<String> = info
        .capabilities
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let signature = match (&args.key, args.allow_unsigned) {
        (Some(_), true) => bail!("--key signs what is pushed: leave out --allow-unsigned"),
        (Some(name), false) => {
            let key = open_registry(home)?.signing_key(name)?;
            let caps = declared_capabilities(&info, &args.requests)?;
            Some(SignatureFile::sign(&key, &bytes, &manifest.id, &manifest.version, caps).to_json())
        }
        (None, true) => None,
        (None, false) => {
            let sig = sig_path(&args.file);
            let text = std::fs::read_to_string(&sig).with_context(|| {
                format!(
                    "cannot read {} (sign with --key NAME, or push unsigned with --allow-unsigned)",
                    sig.display()
                )
            })?;
            let parsed = SignatureFile::parse(&text)
                .with_context(|| format!("signature {}", sig.display()))?;
            if parsed.statement.digest != plughost::registry::Digest::of(&bytes).to_string() {
                bail!(
                    "{} is not the signature of {}: its digest differs",
                    sig.display(),
                    args.file.display()
                );
            }
            Some(text)
        }
    };
    let client = args.registry.client(home, &reference)?;
    let started = std::time::Instant::now();
    let digest = client
        .push(
            &reference,
            &bytes,
            signature.as_deref().map(str::as_bytes),
            &imports,
        )
        .await?;
    println!(
        "pushed {} {} ({}) to {} in {:.1}s",
        manifest.id,
        manifest.version,
        human_bytes(bytes.len() as u64),
        args.reference,
        started.elapsed().as_secs_f64()
    );
    println!("  manifest   {digest}");
    match signature {
        Some(_) => println!("  signature  tag {}", oci::signature_tag(&digest)),
        None => println!("  signature  none (installs need --allow-unsigned)"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn registry(home: &Home, cmd: RegistryCommand) -> Result<ExitCode> {
    let store = CredentialsStore::at(home.root());
    match cmd {
        RegistryCommand::Login { registry, username } => {
            let password = if std::io::stdin().is_terminal() {
                rpassword::prompt_password(format!(
                    "password for {username}@{registry} (not echoed): "
                ))?
            } else {
                let mut v = String::new();
                std::io::stdin().take(64 << 10).read_to_string(&mut v)?;
                v
            };
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                bail!("empty password: nothing was stored");
            }
            store.login(&registry, Credentials { username, password })?;
            println!(
                "credentials for {registry} stored in {}",
                store.path().display()
            );
        }
        RegistryCommand::Logout { registry } => {
            if store.logout(&registry)? {
                println!("credentials for {registry} removed");
            } else {
                bail!("no credentials stored for {registry}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
