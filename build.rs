//! How the `regsync` binary is linked: position-independent (PIE), as the toolchain does by
//! default, unless `REGSYNC_BUILD_PIE=0` is set when building on Linux with glibc.
//!
//! Starting a position-independent `regsync` costs 11-13 ms: the loader applies about 376 000
//! relative relocations (9 MB of table) and writes each into its page, about 2 100 page faults
//! (`perf stat regsync --version`). Linked position-dependent (`-no-pie`) it starts in about
//! 4 ms with about 300. That is 7-9 ms of a whole `regsync cohort` of 80-100 ms on a national
//! lake: worth it on a machine that runs citizen lists as short batch commands. The price is
//! address-space layout randomisation for everything linked into the executable, which is most
//! of its code: OpenSSL, librdkafka, zlib, zstd, the allocator and regsync itself sit at fixed
//! addresses (only glibc's shared libraries and mapped memory move). So the default, and any
//! build that runs the worker or the server for days, stays PIE. Packed relocations (DT_RELR)
//! do not help: the table shrinks to 110 KB and the page faults stay.
//!
//! The integration tests learn what was linked from `REGSYNC_LINKED_PIE` (`1` or `0`).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=REGSYNC_BUILD_PIE");
    let pie = match std::env::var("REGSYNC_BUILD_PIE").as_deref() {
        Err(_) | Ok("1") => true,
        Ok("0") => false,
        Ok(other) => panic!("REGSYNC_BUILD_PIE is `0` or `1`, not `{other}`"),
    };
    let cfg = |key: &str| std::env::var(key).unwrap_or_default();
    let static_crt = cfg("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    // A static build links as static-pie, which `-no-pie` would undo.
    let glibc_linux = cfg("CARGO_CFG_TARGET_OS") == "linux" && cfg("CARGO_CFG_TARGET_ENV") == "gnu";
    let no_pie = !pie && glibc_linux && !static_crt;
    if no_pie {
        println!("cargo::rustc-link-arg-bin=regsync=-no-pie");
    }
    println!(
        "cargo::rustc-env=REGSYNC_LINKED_PIE={}",
        if no_pie { 0 } else { 1 }
    );
}
