//! {{id}}: a plughost plugin written in Rust (built for wasm32-wasip2 by `plughost build`).
//!
//! Each tool is a function from a `Deserialize + JsonSchema` argument struct to a result; the manifest and the
//! JSON Schemas are generated. Host capabilities are typed modules (`log`, `state`, `config`, …); the component
//! imports only the ones it calls, and each needs the operator's grant.

use plughost_guest::{Deserialize, JsonSchema, Plugin, Tool, ToolError, config, export_plugin, log, state};

#[derive(Deserialize, JsonSchema)]
struct Hello {
    /// Who to greet.
    name: String,
}

fn hello(args: Hello) -> Result<String, ToolError> {
    let greeting = config::get_or("greeting", "Hello");
    let count = state::get_json::<u64>("greetings")?.unwrap_or(0) + 1;
    state::set_json("greetings", &count)?;
    log::write_with(
        log::Level::Info,
        "greeted someone",
        &[("name", &args.name), ("count", &count.to_string())],
    );
    Ok(format!("{greeting}, {}! (greeting #{count})", args.name))
}

struct Plug;

impl Plugin for Plug {
    const ID: &'static str = "{{id}}";
    const NAME: &'static str = "{{id}}";
    const VERSION: &'static str = "0.1.0";
    const DESCRIPTION: &'static str = "Greets people and counts the greetings.";

    fn tools() -> Vec<Tool> {
        vec![Tool::new(
            "hello",
            "Greets someone by name (the greeting comes from config `greeting`).",
            hello,
        )]
    }
}

export_plugin!(Plug);
