//! The `usher` binary: a thin shim over the library.

/// mimalloc instead of the system allocator: SQLite rows are built on each
/// connection's thread and freed on the runtime's, and glibc's arenas spent a
/// quarter of a 250-user page on locks and consolidation (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    usher_server::cli::run()
}
