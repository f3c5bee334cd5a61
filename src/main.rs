use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the exact engine allocates one `BigInt` per product,
/// and malloc/free were about a third of its profile (docs/performance.md, issue 12).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    rtb_trustpcl::cli::main()
}
