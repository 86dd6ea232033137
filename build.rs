//! Links the `regsync` binary as a position-dependent executable on Linux (`-no-pie`), unless
//! `REGSYNC_PIE=1` is set when building.
//!
//! A short command pays for the binary's start: as a position-independent executable it carries
//! about 376 000 relative relocations, and the loader writes each into its page, about 2 000
//! page faults and 11-13 ms before `main` (`perf stat regsync --version`); without them it
//! starts in about 4 ms. A whole `regsync cohort` is a few tens of milliseconds, so that is a
//! fifth of it. The price is that the executable's own code and data are not placed at a random
//! address (libraries, heap and stacks still are): the container image, which runs the worker
//! and the server for days, builds with `REGSYNC_PIE=1`. Packed relocations (DT_RELR) were tried
//! first: the table shrank from 9 MB to 110 KB and the start did not change.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=REGSYNC_PIE");
    let target = std::env::var("TARGET").unwrap_or_default();
    let pie = std::env::var("REGSYNC_PIE").is_ok_and(|v| v == "1");
    if target.contains("-linux-gnu") && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
