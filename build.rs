//! Declares one module per `tools/*.rs` file (written to OUT_DIR/tools.rs), so a tool is added
//! by dropping a file in `tools/`, and embeds `tools/<name>.html` beside one as its view.
//! Touches nothing outside OUT_DIR; no network, no git.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // The directory itself: without it, a new file would be silently ignored.
    println!("cargo:rerun-if-changed=tools");
    let dir = Path::new("tools");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tools/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    entries.sort();
    let mut out = String::new();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name");
        assert!(
            !stem.is_empty()
                && stem
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && stem
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "tools/{stem}.rs: a tool file name must be a Rust module name (lower_snake_case)"
        );
        let abs = std::fs::canonicalize(&path).expect("tool file path");
        writeln!(
            out,
            "#[path = {:?}]\npub mod {stem};",
            abs.display().to_string()
        )
        .unwrap();
        // A page beside the tool is its view (MCP Apps), embedded in the binary.
        // (Watched only when it exists: cargo reruns a script whose watched path is missing on
        // every build. The directory's own watch sees a page added or removed.)
        let page = path.with_extension("html");
        if page.is_file() {
            println!("cargo:rerun-if-changed={}", page.display());
            let size = std::fs::metadata(&page).expect("view file").len();
            // src/tool.rs MAX_VIEW_BYTES.
            assert!(
                size <= 512 * 1024,
                "tools/{stem}.html is {size} bytes: a view is at most 512 KiB (it is sent whole on every read)"
            );
            let abs = std::fs::canonicalize(&page).expect("view file path");
            writeln!(
                out,
                "::inventory::submit! {{ crate::tool::ViewDef {{ stem: {stem:?}, html: include_str!({:?}) }} }}",
                abs.display().to_string()
            )
            .unwrap();
        }
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("tools.rs");
    std::fs::write(dest, out).expect("write OUT_DIR/tools.rs");
}
