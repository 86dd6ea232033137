//! How the binary is built: the README's two commands share one build of the dependencies, and
//! the binary is linked to start fast.
//!
//! `cargo run` resolves features for the `regsync` package alone; `cargo test --workspace` adds
//! every member's dev-dependencies. If a dev-dependency turns on a feature of a shared crate
//! (serde, serde_json, ...) that the run build does not, cargo compiles that crate and everything
//! above it (datafusion, deltalake) twice, which on a fresh two-core machine doubles the set-up
//! time. The root package's aligned features keep the two equal; this test notices drift.

use std::collections::BTreeSet;
use std::process::Command;

/// `cargo tree` lines `name version [features]` for one package selection.
fn resolved(args: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "--prefix", "none"])
        .args(["--format", "{p} [{f}]"])
        .args(args)
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.replace(" (*)", "")
                .replace(" (proc-macro)", "")
                .trim()
                .to_string()
        })
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn cargo_run_reuses_the_dependencies_the_test_build_compiles() {
    let test_build = resolved(&["--workspace", "--edges", "normal,build,dev"]);
    let run_build = resolved(&["--package", "regsync", "--edges", "normal,build"]);
    assert!(run_build.len() > 100, "cargo tree listed {run_build:?}");
    let differing: Vec<&String> = run_build.difference(&test_build).collect();
    assert!(
        differing.is_empty(),
        "`cargo run` would compile these crates with other features than `cargo test --workspace` \
         does, so both builds of every crate above them: {differing:#?}\n\
         Enable the test build's features in the root package's aligned dependencies."
    );
}

/// The binary is linked as its build asked (`build.rs`): position-independent (ELF type
/// `ET_DYN`, 3) unless built with `REGSYNC_BUILD_PIE=0`, then position-dependent (`ET_EXEC`, 2).
#[test]
#[cfg(target_os = "linux")]
fn the_binary_is_linked_as_its_build_asked() {
    use std::io::Read as _;
    let mut header = [0u8; 18];
    std::fs::File::open(env!("CARGO_BIN_EXE_regsync"))
        .and_then(|mut f| f.read_exact(&mut header))
        .expect("the binary's header is readable");
    assert_eq!(&header[..4], b"\x7fELF", "not an ELF file");
    let kind = [header[16], header[17]];
    // EI_DATA: 1 little-endian, 2 big-endian.
    let kind = if header[5] == 2 {
        u16::from_be_bytes(kind)
    } else {
        u16::from_le_bytes(kind)
    };
    let pie = env!("REGSYNC_LINKED_PIE") == "1";
    assert_eq!(kind, if pie { 3 } else { 2 }, "ELF type {kind}");
}

/// The allocator starts with the binary's own options (`src/main.rs`): jemalloc prints them at
/// exit when the environment adds `stats_print`, which leaves the rest as the binary set them.
#[test]
fn the_allocator_returns_freed_pages_within_a_second() {
    let out = Command::new(env!("CARGO_BIN_EXE_regsync"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("regsync runs");
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    assert!(
        stats.contains("opt.dirty_decay_ms: 1000 "),
        "jemalloc's options were not the binary's: {}",
        stats
            .lines()
            .filter(|l| l.contains("decay"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
