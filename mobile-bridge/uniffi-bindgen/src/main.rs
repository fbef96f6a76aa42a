//! UniFFI's bindings generator, built from the workspace's own `uniffi`
//! dependency so the generated Kotlin, Swift and Python always match the
//! scaffolding compiled into `libfieldnotes_mobile_bridge` (a separately
//! installed `uniffi-bindgen` of another version would produce bindings that
//! fail their checksum checks at load time).
//!
//! Usage: `mobile-bridge/bindings.sh`, or
//! `cargo run -p fieldnotes-uniffi-bindgen -- generate --library <lib> --language <lang> --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
