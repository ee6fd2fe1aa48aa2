//! The `usher` binary: a thin shim over the library.

fn main() -> std::process::ExitCode {
    usher_server::cli::run()
}
