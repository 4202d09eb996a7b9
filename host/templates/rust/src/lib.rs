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

/// A resource clients can read (contract 0.2.0): `plughost://plugins/{{id}}/r/greetings`.
fn greetings() -> Resource {
    Resource::new("greetings", "greetings", |_| {
        let count = state::get_json::<u64>("greetings")?.unwrap_or(0);
        Ok(format!("{count} greetings so far").into())
    })
    .mime_type("text/plain")
}

/// A prompt clients can render (contract 0.2.0): `{{id}}__welcome`.
fn welcome() -> Prompt {
    Prompt::new("welcome", "Writes a welcome note for someone.", |args| {
        let name = args.get("name").unwrap_or("everyone");
        Ok(vec![Message::user(format!("Write a short welcome note for {name}."))])
    })
    .argument("name", "Who to welcome.", true)
}

export_plugin! {
    id: "{{id}}",
    description: "Greets people and counts the greetings.",
    tools: [hello],
    resources: [greetings],
    prompts: [welcome],
}
