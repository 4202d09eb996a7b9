//! {{id}}: a plughost plugin in Rust. `plughost build` builds it; `cargo doc -p plughost-guest` is the SDK's reference.

use plughost_guest::prelude::*;

#[args]
struct Hello {
    /// Who to greet.
    name: String,
}

/// Greets someone by name (the greeting comes from config `greeting`).
#[tool]
fn hello(args: Hello) -> Result<String, ToolError> {
    let greeting = config::get_or("greeting", "Hello");
    let count = state::get_json::<u64>("greetings")?.unwrap_or(0) + 1;
    state::set_json("greetings", &count)?;
    log::info!("greeted {} (greeting #{count})", args.name);
    Ok(format!("{greeting}, {}! (greeting #{count})", args.name))
}

export_plugin! {
    id: "{{id}}",
    description: "Greets people and counts the greetings.",
    tools: [hello],
}
