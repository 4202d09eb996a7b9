//! Loading a plugin whose `describe()` misbehaves says why in the plugin author's terms: a capability called
//! before anything is granted, a `tools` export with the wrong types, a manifest too large to copy.

use plughost::Host;
use plughost_tests as fx;

async fn load_error(bytes: &[u8]) -> String {
    let host = Host::ephemeral().expect("host");
    match host.load(bytes, |_| Default::default()).await {
        Ok(_) => panic!("the plugin loaded"),
        Err(e) => {
            eprintln!("{e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn a_capability_called_in_describe_is_named_with_the_hosts_reason() {
    let bytes = std::fs::read(fx::DESCRIBE_LOG).expect("fixture");
    let msg = load_error(&bytes).await;
    assert!(
        msg.contains("describe() called `plughost:plugin/log")
            && msg.contains("no capability is granted during describe()"),
        "{msg}"
    );
    assert!(!msg.contains("trapped"), "{msg}");
}

#[tokio::test]
async fn a_huge_description_is_refused_by_its_size() {
    let bytes = std::fs::read(fx::DESCRIBE_HUGE).expect("fixture");
    let msg = load_error(&bytes).await;
    assert!(
        msg.contains(
            "invalid manifest: the plugin's description is 64.0 MiB, more than the 64.0 KiB allowed"
        ),
        "{msg}"
    );
    assert!(!msg.contains("too much data is being copied"), "{msg}");
}

/// A component exporting `plughost:plugin/tools@0.1.0` whose `describe` and `call` take and return the wrong types.
const WRONG_TYPES: &str = r#"
(component
  (core module $m
    (func (export "f") (result i32) i32.const 0)
    (memory (export "memory") 1))
  (core instance $i (instantiate $m))
  (func $f (result u32) (canon lift (core func $i "f")))
  (instance $tools (export "describe" (func $f)) (export "call" (func $f)))
  (export "plughost:plugin/tools@0.1.0" (instance $tools)))
"#;

#[tokio::test]
async fn a_tools_export_with_the_wrong_types_is_named() {
    let bytes = wat::parse_str(WRONG_TYPES).expect("wat");
    let msg = load_error(&bytes).await;
    assert!(
        msg.contains("does not match the contract") && msg.contains("plughost:plugin/tools"),
        "{msg}"
    );
    assert!(!msg.contains("trapped"), "{msg}");
}
