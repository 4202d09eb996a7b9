//! Getting a component in: `plughost sign` (a publisher signs its digest and what it declares), `install` and
//! `upgrade` (verify the signature, check the component against it, approve grants, record it in the registry).
//! Only the CLI approves grants; nothing here is reachable from MCP.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use plughost::grants::Declaration;
use plughost::registry::{
    InstallRequest, Provenance, Registry, RegistryError, SignatureFile, UpgradeCheck,
    UpgradePolicy, capability_diff, grant_kind,
};
use plughost::units::human_bytes;
use plughost::{Capability, ComponentInfo, Grant, Grants, Home, Host, Manifest};

use super::fetch::{Fetched, RegistryArgs, fetch};
use super::show::{list_or_none, open_registry, print_json, publisher_text};

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The component to sign.
    pub file: PathBuf,
    /// Signing key: a key name in the data dir, or a path to a .key file.
    #[arg(long)]
    pub key: String,
    /// Request a specific grant instead of the bare capability (repeatable), e.g.
    /// --request http:https://api.cloudflare.com. Capabilities the component imports are always declared.
    #[arg(long = "request", value_name = "GRANT")]
    pub requests: Vec<String>,
    /// Where to write the signature (default: FILE.sig).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The component to install: a .wasm file, oci://REGISTRY/REPOSITORY:TAG (or @sha256:HEX), or an https URL.
    pub file: String,
    /// The signature, a file or (for a URL install) a URL (default: FILE.sig, URL.sig).
    #[arg(long)]
    pub sig: Option<PathBuf>,
    /// Approve exactly these grants (repeatable) instead of what the publisher requests.
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<String>,
    /// Approve what the publisher requests without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Install without a signature. Recorded, and shown in `list`.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Upgrade only: accept a component from another publisher than the installed version's (or unsigned where
    /// it was signed, or signed where it was unsigned). Shown in the diff, recorded in the history.
    #[arg(long)]
    pub allow_publisher_change: bool,
    /// Upgrade only: accept an older version than the installed one (or one that is not semver and differs).
    #[arg(long)]
    pub allow_downgrade: bool,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

// ---- sign ------------------------------------------------------------------------------------------------------

pub(super) async fn describe_file(
    host: &Host,
    file: &Path,
) -> Result<(Vec<u8>, ComponentInfo, Manifest)> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (info, manifest) = describe_bytes(host, &bytes, file.display().to_string()).await?;
    Ok((bytes, info, manifest))
}

async fn describe_bytes(
    host: &Host,
    bytes: &[u8],
    name: String,
) -> Result<(ComponentInfo, Manifest)> {
    // Compiled before the approval prompt (the manifest comes from running the component), on a line of its own.
    let step = plughost::progress::OnDemand::default();
    let what = format!(
        "compiling {name} ({}) once; later loads come from the cache",
        human_bytes(bytes.len() as u64)
    );
    let compiled = host.compile(bytes, step.starter(what));
    step.finish();
    let (component, info, _) = compiled?;
    let manifest = host.describe(&component).await?;
    Ok((info, manifest))
}

/// The capabilities a component declares: one grant per import, where `--request` may make one specific.
pub(super) fn declared_capabilities(
    info: &ComponentInfo,
    requests: &[String],
) -> Result<Vec<String>> {
    let requested = Grants::parse(requests).context("--request")?;
    for g in requested.iter() {
        if !info.capabilities.contains(&g.capability()) {
            bail!(
                "--request {g}: the component does not import `{}`, so it cannot use that grant",
                g.capability().name()
            );
        }
    }
    info.capabilities
        .iter()
        .map(|c| match requested.get(*c) {
            Some(g) => Ok(g.to_string()),
            // A bare declaration must itself be a grant (`state` is 16 MiB); `http` and `container` need a scope.
            None if c.name().parse::<Grant>().is_ok() => Ok(c.name().to_string()),
            None => bail!(
                "the component imports `{c}`, which is declared with its scope: add {}; install grants at most \
                 what is declared, so nothing was signed",
                request_example(*c)
            ),
        })
        .collect()
}

/// The `--request` a publisher adds for a capability that needs a scope.
fn request_example(c: Capability) -> &'static str {
    match c {
        Capability::Http => {
            "--request http:https://api.example.com (the origins it calls, comma-separated)"
        }
        Capability::Container => {
            "--request 'container:read,lifecycle;images=localhost/busybox:*' (the groups and images it needs)"
        }
        _ => "--request with its scope",
    }
}

pub async fn sign(home: &Home, args: SignArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let key = reg.signing_key(&args.key)?;
    let host = Host::open(home)?;
    let (bytes, info, manifest) = describe_file(&host, &args.file).await?;
    let caps = declared_capabilities(&info, &args.requests)?;
    let sig = SignatureFile::sign(&key, &bytes, &manifest.id, &manifest.version, caps.clone());
    let out = args
        .out
        .unwrap_or_else(|| super::fetch::sig_path(&args.file));
    plughost::registry::blobs::write_atomic(&out, sig.to_json().as_bytes())?;
    println!(
        "signed {} {} ({}) with `{}` {}",
        manifest.id,
        manifest.version,
        sig.statement.digest,
        key.name,
        key.public().fingerprint()
    );
    println!(
        "  declares  {}",
        if caps.is_empty() {
            "no capabilities".to_string()
        } else {
            caps.join(", ")
        }
    );
    println!("  wrote     {}", out.display());
    Ok(ExitCode::SUCCESS)
}

// ---- install / upgrade -----------------------------------------------------------------------------------------

struct Checked {
    bytes: Vec<u8>,
    info: ComponentInfo,
    manifest: Manifest,
    provenance: Provenance,
    declared: Vec<String>,
}

/// Verifies and inspects a component for install: signature first (nothing else runs for an unsigned or badly
/// signed file), then the component itself (a core module or wrong contract is refused by the host), then that its
/// `describe()` and imports match what was signed.
async fn check_for_install(
    reg: &Registry,
    host: &Host,
    args: &InstallArgs,
    fetched: &Fetched,
) -> Result<Checked> {
    let bytes = fetched.bytes.clone();
    let provenance = match &fetched.signature {
        Some((text, from)) => {
            let sig = SignatureFile::parse(text).with_context(|| format!("signature {from}"))?;
            Provenance::Signed(reg.verify(&bytes, &sig)?)
        }
        None if args.allow_unsigned => Provenance::unsigned(&bytes),
        None => bail!(
            "{} is not signed ({}), or install it anyway with --allow-unsigned (recorded and shown in \
             `plughost list`)",
            fetched.label,
            fetched.sig_hint
        ),
    };
    let (info, manifest) = describe_bytes(host, &bytes, fetched.label.clone()).await?;
    let declared = match &provenance {
        Provenance::Signed(v) => {
            let s = v.statement();
            if s.plugin != manifest.id || s.version != manifest.version {
                bail!(
                    "manifest mismatch: the component says it is {} {}, but the signature is for {} {}",
                    manifest.id,
                    manifest.version,
                    s.plugin,
                    s.version
                );
            }
            let kinds = s.kinds();
            let undeclared: Vec<&str> = info
                .capabilities
                .iter()
                .map(|c| c.name())
                .filter(|c| !kinds.contains(c))
                .collect();
            if !undeclared.is_empty() {
                bail!(
                    "the component imports {} but its publisher did not declare {}; refusing to install",
                    undeclared.join(", "),
                    if undeclared.len() == 1 { "it" } else { "them" }
                );
            }
            // A declaration that does not parse covers no grant, so the import could never be linked.
            let declaration = Declaration::parse(&s.capabilities);
            for c in &info.capabilities {
                if let Some((declared, reason)) = declaration.unreadable(*c) {
                    bail!(
                        "the publisher declared `{declared}` for the imported `{c}`, which is not a valid grant \
                         ({reason}), so no `{c}` grant can be approved; refusing to install (the publisher must sign \
                         again with a valid --request)"
                    );
                }
            }
            s.capabilities.clone()
        }
        Provenance::Unsigned { .. } => info
            .capabilities
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
    };
    Ok(Checked {
        bytes,
        info,
        manifest,
        provenance,
        declared,
    })
}

fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Decides the grants to approve. `--grant` wins; else the publisher's requests, with approval from --yes or a
/// prompt. `needs_approval` lists what is new (for an upgrade) or everything (for an install).
fn approve(
    args: &InstallArgs,
    plugin: &str,
    proposed: Vec<String>,
    needs_approval: &[String],
) -> Result<Vec<String>> {
    let approved = if !args.grants.is_empty() {
        Grants::parse(&args.grants)?.to_strings()
    } else if needs_approval.is_empty() || args.yes {
        proposed
    } else {
        eprintln!("plugin `{plugin}` asks for:");
        for g in needs_approval {
            let desc = Capability::from_name(grant_kind(g))
                .map(|c| c.describe())
                .unwrap_or("");
            eprintln!("  {g:<36} {desc}");
        }
        if confirm("approve these grants?")? {
            proposed
        } else {
            bail!(
                "not approved: nothing was installed. Approve with --yes, or choose grants with --grant \
                 (e.g. {})",
                needs_approval
                    .iter()
                    .map(|g| format!("--grant {g}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    };
    // One canonical spelling, one grant per capability, in capability order.
    Ok(Grants::parse(&approved)?.to_strings())
}

fn check_covers_imports(plugin: &str, info: &ComponentInfo, approved: &[String]) -> Result<()> {
    let g = Grants::parse(approved)?;
    let missing: Vec<&str> = info
        .capabilities
        .iter()
        .filter(|c| !g.has(**c))
        .map(|c| c.name())
        .collect();
    if !missing.is_empty() {
        bail!(
            "plugin `{plugin}` imports {} and could not run without {}; nothing was installed",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}

pub async fn install(home: &Home, args: InstallArgs, upgrade: bool) -> Result<ExitCode> {
    if !upgrade && (args.allow_publisher_change || args.allow_downgrade) {
        bail!(
            "--allow-publisher-change and --allow-downgrade are for `plughost upgrade`: a first install pins the \
             plugin to its publisher"
        );
    }
    let reg = open_registry(home)?;
    let host = Host::open(home)?;
    // Fetched (and, for OCI, its sha256 digests checked) into memory; nothing is written before it is verified.
    let source = match upgrade {
        true => super::outdated::upgrade_source(home, &args.file, &args.registry).await?,
        false => None,
    };
    let from = source.as_deref().unwrap_or(&args.file);
    let fetched = match fetch(home, from, args.sig.as_deref(), &args.registry).await {
        Ok(f) => f,
        Err(e) => return Err(refused(&reg, from, upgrade, e)),
    };
    let result = install_in(&reg, &host, &args, &fetched, upgrade).await;
    if result.is_err() {
        // A refused install leaves nothing behind: not the artifact checking it compiled (or `sign` left), unless an
        // installed version is this very component.
        let digest = blake3::hash(&fetched.bytes).to_hex();
        if !reg.component_installed(&digest).unwrap_or(true) {
            host.engine().discard(&digest);
        }
    }
    result.map_err(|e| refused(&reg, from, upgrade, e))
}

/// Records a refused install or upgrade in the audit trail (what, from where, why), then hands the error back.
fn refused(reg: &Registry, from: &str, upgrade: bool, e: anyhow::Error) -> anyhow::Error {
    let action = if upgrade {
        "upgrade-refused"
    } else {
        "install-refused"
    };
    let why = plughost::said::once(e.chain()).replace('\n', "; ");
    if let Err(w) = reg.record_refusal(None, action, &format!("{}: {why}", without_userinfo(from)))
    {
        tracing::warn!("cannot record the refused install in the audit trail: {w}");
    }
    e
}

/// `from` with any `user:password@` of a URL replaced, so a credential typed into a URL never reaches the trail.
fn without_userinfo(from: &str) -> String {
    let Some((scheme, rest)) = from.split_once("://") else {
        return from.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => from.to_string(),
    }
}

async fn install_in(
    reg: &Registry,
    host: &Host,
    args: &InstallArgs,
    fetched: &Fetched,
    upgrade: bool,
) -> Result<ExitCode> {
    let policy = UpgradePolicy {
        allow_publisher_change: args.allow_publisher_change,
        allow_downgrade: args.allow_downgrade,
    };
    let c = check_for_install(reg, host, args, fetched).await?;
    let id = c.manifest.id.clone();
    let existing = match reg.plugin(&id) {
        Ok(r) => Some(r),
        Err(RegistryError::NotInstalled(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let digest = c.provenance.digest().to_string();
    let record = match (existing, upgrade) {
        (Some(cur), _) if cur.digest == digest => {
            println!(
                "{id} {} ({digest}) is already installed and current",
                cur.version
            );
            return Ok(ExitCode::SUCCESS);
        }
        (Some(cur), false) => {
            bail!(
                "plugin `{id}` is already installed (version {}); use `plughost upgrade {}`",
                cur.version,
                args.file
            )
        }
        (None, true) => bail!(
            "plugin `{id}` is not installed; use `plughost install {}`",
            args.file
        ),
        (None, false) => {
            let approved = approve(args, &id, c.declared.clone(), &c.declared)?;
            check_covers_imports(&id, &c.info, &approved)?;
            reg.install(InstallRequest {
                provenance: c.provenance.clone(),
                bytes: &c.bytes,
                plugin: &id,
                version: &c.manifest.version,
                manifest_json: serde_json::to_string(&c.manifest)?,
                imports: c.declared.clone(),
                grants: approved,
                source: fetched.source.clone(),
            })?
        }
        (Some(cur), true) => {
            let (added, removed) = capability_diff(&cur.declared, &c.declared);
            let check = UpgradeCheck::new(&cur, &c.provenance, &c.manifest.version);
            println!(
                "upgrade {id}: {} -> {}{}",
                cur.version,
                c.manifest.version,
                if check.is_downgrade() {
                    "   (DOWNGRADE: not newer)"
                } else {
                    ""
                }
            );
            if check.publisher_changes() {
                println!(
                    "  publisher  {} -> {}   (CHANGED)",
                    check.old_publisher, check.new_publisher
                );
            } else {
                println!("  publisher  {} (unchanged)", check.old_publisher);
            }
            // Refused before anything is asked or written.
            check.enforce(&id, policy)?;
            for g in &added {
                println!("  + {g}   (new: needs approval)");
            }
            for g in &removed {
                println!("  - {g}");
            }
            if added.is_empty() && removed.is_empty() {
                println!("  capabilities unchanged");
            }
            // Keep what the operator approved before where the new version still declares it (at its level of
            // detail when signed: an origin or quota no longer declared is dropped), and ask for what is new.
            let kinds: Vec<&str> = c.declared.iter().map(|d| grant_kind(d)).collect();
            let declaration = Declaration::parse(&c.declared);
            let signed = matches!(c.provenance, Provenance::Signed(_));
            let mut proposed: Vec<String> = cur
                .grants
                .iter()
                .filter(|g| match (signed, g.parse::<Grant>()) {
                    (true, Ok(g)) => declaration.check(&g).is_ok(),
                    (true, Err(_)) => false,
                    (false, _) => kinds.contains(&grant_kind(g)),
                })
                .cloned()
                .collect();
            proposed.extend(added.iter().cloned());
            let approved = approve(args, &id, proposed, &added)?;
            check_covers_imports(&id, &c.info, &approved)?;
            reg.upgrade_with(
                InstallRequest {
                    provenance: c.provenance.clone(),
                    bytes: &c.bytes,
                    plugin: &id,
                    version: &c.manifest.version,
                    manifest_json: serde_json::to_string(&c.manifest)?,
                    imports: c.declared.clone(),
                    grants: approved,
                    source: fetched.source.clone(),
                },
                policy,
            )?
        }
    };
    if args.json {
        print_json(&record)?;
    } else {
        println!(
            "{} {id} {} ({})",
            if upgrade { "upgraded" } else { "installed" },
            record.version,
            record.digest
        );
        println!("  publisher  {}", publisher_text(&record));
        if let Some(src) = &record.source {
            println!("  source     {src}");
        }
        if let Some(m) = &record.manifest_digest {
            println!("  manifest   {m}");
        }
        println!("  grants     {}", list_or_none(&record.grants));
        println!("  tools      {}", c.manifest.tools.len());
    }
    Ok(ExitCode::SUCCESS)
}
