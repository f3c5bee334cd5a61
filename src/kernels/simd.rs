//! Runtime SIMD dispatch for the kernels' memory-bound loops.
//!
//! The crate is built for baseline x86-64 (SSE2). The loops of phase 1 (the per-trajectory
//! sums) and phase 3 (the dense gradient write) are compiled twice more, with AVX2+FMA and
//! with AVX-512 (F, VL, BW, DQ) enabled (`#[target_feature]`), and [`level`] picks the best
//! the CPU has, detected once per process (`is_x86_feature_detected!`). No `-C target-cpu`
//! is needed. (`pulp` and `multiversion` do the same; `pulp` is already in the dependency
//! tree through candle, but enabling its AVX-512 level changes `bytemuck`'s features and
//! rebuilds candle, for the twenty lines below.)
//!
//! **The results do not depend on the level.** The sums are written as eight interleaved
//! lanes in a fixed order ([`super::sum`]); a wider instruction set only computes the same
//! lanes in fewer instructions. Rust never contracts `a·b + c` into a fused multiply-add on
//! its own (no fast-math), so enabling FMA changes no rounding either. The rounding depth of
//! [`super::sum::depth`] therefore holds at every level, and a unit test
//! (`fused::tests::dispatched_phase1_equals_the_baseline_bit_for_bit`) checks it.
use std::sync::OnceLock;

/// A loop body to run under the dispatched instruction set. Implementations must be
/// `#[inline(always)]` all the way down, so that the body is compiled inside the
/// target-feature function (a closure would be a separate function built for the baseline).
pub(crate) trait Task {
    /// What the body returns.
    type Output;
    /// The body.
    fn run(self) -> Self::Output;
}

/// The instruction sets the loops are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

/// The environment variable that caps the dispatched instruction set (`baseline`, `avx2`,
/// `avx512`): for measuring what each level gains, or to avoid one on a CPU where it is
/// slower. A level above what the CPU has is ignored (the CPU decides); an unknown value is
/// ignored with a warning on stderr naming the variable and the value.
pub const SIMD_ENV: &str = "RTB_TRUSTPCL_SIMD";

/// The rank of a level name (`baseline` 0, `avx2` 1, `avx512` 2).
fn rank(level: &str) -> Option<u8> {
    match level {
        "baseline" => Some(0),
        "avx2" => Some(1),
        "avx512" => Some(2),
        _ => None,
    }
}

/// The cap that the value of [`SIMD_ENV`] sets: `Ok(None)` when unset or empty, `Err` with the
/// message to print when the value names no level.
fn parse_cap(value: Option<&str>) -> Result<Option<u8>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => rank(&v.to_ascii_lowercase()).map(Some).ok_or_else(|| {
            format!(
                "warning: {SIMD_ENV}={value:?} is not one of baseline, avx2, avx512; ignored \
                 (the kernels use the best level of this CPU)",
                value = value.unwrap_or_default()
            )
        }),
    }
}

fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let value = std::env::var(SIMD_ENV).ok();
        let cap = parse_cap(value.as_deref()).unwrap_or_else(|warning| {
            eprintln!("{warning}");
            None
        });
        let allowed = |level: &str| match (cap, rank(level)) {
            (Some(c), Some(r)) => r <= c,
            _ => true,
        };
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if allowed("avx512")
                && has!("avx512f")
                && has!("avx512vl")
                && has!("avx512bw")
                && has!("avx512dq")
            {
                return Isa::Avx512;
            }
            if allowed("avx2") && has!("avx2") && has!("fma") {
                return Isa::Avx2;
            }
        }
        let _ = allowed;
        Isa::Baseline
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
fn run_avx2<T: Task>(task: T) -> T::Output {
    task.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")]
fn run_avx512<T: Task>(task: T) -> T::Output {
    task.run()
}

/// Runs `task` with the best instruction set of this CPU.
#[inline(always)]
pub(crate) fn dispatch<T: Task>(task: T) -> T::Output {
    match isa() {
        Isa::Baseline => task.run(),
        // SAFETY: `isa()` returned these only where the CPU reports every enabled feature.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2(task) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { run_avx512(task) },
    }
}

/// Runs `task` with the best instruction set of this CPU, but with vectors of at most 256 bits
/// (AVX2 where the CPU has AVX-512): the loops over `f64` with eight interleaved lanes. Their
/// eight accumulators fill one 512-bit register, and `bench` measured the Trust-PCL term
/// (two products and a sum per step) 1.43× slower at AVX-512 than at the baseline in the
/// same build, AVX2 at par (`docs/performance.md`, session 6); with `f32` the eight lanes
/// are 256 bits at either level.
#[inline(always)]
pub(crate) fn dispatch_256<T: Task>(task: T) -> T::Output {
    match isa() {
        Isa::Baseline => task.run(),
        // SAFETY: `isa()` returned these only where the CPU reports every enabled feature
        // (AVX-512 implies AVX2 and FMA on every CPU that has it; checked again here).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { run_avx2(task) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                unsafe { run_avx2(task) }
            } else {
                task.run()
            }
        }
    }
}

/// Runs `task` for elements of `bytes` bytes: [`dispatch_256`] for 8-byte elements,
/// [`dispatch`] otherwise.
#[inline(always)]
pub(crate) fn dispatch_for<T: Task>(bytes: usize, task: T) -> T::Output {
    if bytes >= 8 {
        dispatch_256(task)
    } else {
        dispatch(task)
    }
}

/// Whether the dispatched loops may use AVX (256-bit) vectors: the level is AVX2 or AVX-512.
pub(crate) fn has_avx() -> bool {
    isa() != Isa::Baseline
}

/// The instruction set the loops over elements of `bytes` bytes run with (see
/// [`dispatch_for`]).
pub fn level_for(bytes: usize) -> &'static str {
    match (isa(), bytes >= 8) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, true) => "avx2",
        _ => level(),
    }
}

/// Runs `task` compiled for the baseline instruction set (the reference for the bit-identity
/// test and for measuring what dispatch gains).
#[inline(always)]
pub(crate) fn baseline<T: Task>(task: T) -> T::Output {
    task.run()
}

/// The instruction set the kernels' loops run with on this CPU: `"avx512"`, `"avx2"` or
/// `"baseline"` (SSE2 on x86-64, the target's default elsewhere).
pub fn level() -> &'static str {
    match isa() {
        Isa::Baseline => "baseline",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => "avx2",
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => "avx512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_names_a_level_or_warns_naming_variable_and_value() {
        assert_eq!(parse_cap(None), Ok(None));
        assert_eq!(parse_cap(Some("")), Ok(None));
        assert_eq!(parse_cap(Some("baseline")), Ok(Some(0)));
        assert_eq!(parse_cap(Some("AVX2")), Ok(Some(1)));
        assert_eq!(parse_cap(Some(" avx512 ")), Ok(Some(2)));
        let warning = parse_cap(Some("avx-512")).unwrap_err();
        assert!(warning.contains(SIMD_ENV), "{warning}");
        assert!(warning.contains("\"avx-512\""), "{warning}");
        assert!(warning.contains("ignored"), "{warning}");
    }
}
