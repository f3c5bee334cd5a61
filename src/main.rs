use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the exact engine allocates one `BigInt` per product,
/// and malloc/free were about a third of its profile (docs/performance.md, issue 12).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_e` in the bundled mimalloc
/// 3.3's `mimalloc.h`; the test below checks it against the option's default).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// How long freed memory stays with mimalloc before it goes back to the OS (milliseconds;
/// mimalloc's default is 1000). With the default, the kernels' fresh `B`-long outputs were
/// returned to the OS between calls and faulted back in as zeroed 2 MiB pages on the next:
/// 18 faults and about 5 ms of page clearing per call of the flawed kernel at B = 2^20
/// (docs/performance.md, session 13). Ten seconds keeps them across `bench`'s repeats and a
/// training loop's steps, and still returns memory an idle phase no longer uses.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

fn main() -> ExitCode {
    // An explicit `MIMALLOC_PURGE_DELAY` in the environment wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain option setter of the allocator this binary links; the index is
        // checked by the test below.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    rtb_trustpcl::cli::main()
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" {
        fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    }

    /// The option index names the purge delay: its default is mimalloc's documented 1000 ms
    /// (unless the environment sets it), and setting it reads back.
    #[test]
    fn the_purge_delay_option_is_the_one_we_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reading an option of the linked allocator.
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 1000);
        }
        // SAFETY: as in `main`.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
        // SAFETY: as above.
        assert_eq!(
            unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }
}
