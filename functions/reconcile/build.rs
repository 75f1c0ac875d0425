//! Links the Lambda binary as a position-dependent executable on Linux (`-no-pie`), in
//! every profile and for every target, so `cargo build --release` (`make test`, the bench)
//! and `cargo lambda build` (`sam build`, `make build`) ship the same kind of binary. A PIE
//! build of a function carries about 61,000 relative relocations that the dynamic loader
//! applies at every start, writing into about 1 MiB of `.data.rel.ro` that each start then
//! copies page by page; a fixed-address executable has none (README, "Performance";
//! `BENCHMARKS.md`, section 1). The trade: the executable's own code and data load at a
//! fixed address (no ASLR for them); libc, heap, stack and mappings stay randomized, and
//! RELRO, `BIND_NOW` and the non-executable stack are unchanged. The same file is in each
//! function's crate and in `bench-hello`, so the floor is linked like the functions.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
