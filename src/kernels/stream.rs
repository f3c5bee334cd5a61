//! Streaming (non-temporal) stores of whole, 64-byte aligned cache lines: the one place the
//! crate writes them. A streamed line goes to memory without being read into the cache
//! first, so writing `n` bytes moves `n` bytes instead of `2n` once the data is out of the
//! cache. The dense gradient's writer (`fused::LineSink`) streams the lines it assembles;
//! `bench`'s copy references stream the lines they copy, so that each write floor is the
//! faster of ordinary and streaming stores, as the kernels may choose either.
//!
//! The stores are SSE2's 16-byte `movntdq` (part of x86-64, so no dispatch is needed); off
//! x86-64 every function here writes with ordinary stores.
use super::float::Float;

/// A cache line's bytes (a line holds at most 16 elements: f32).
pub(crate) const LINE_BYTES: usize = 64;

/// Writes `src[..n]` into `dst[..n]`, one whole line: `n = LINE_BYTES / size_of::<F>()`
/// elements.
///
/// # Safety
/// `dst` must start on a 64-byte boundary (the streaming store faults, or is undefined
/// behaviour, otherwise). Both slices are bounds-checked to hold `n` elements.
#[inline(always)]
pub(crate) unsafe fn line<F: Float>(dst: &mut [F], src: &[F]) {
    let n = LINE_BYTES / std::mem::size_of::<F>();
    let (dst, src) = (&mut dst[..n], &src[..n]);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_stream_si128};
        let dst = dst.as_mut_ptr() as *mut __m128i;
        let src = src.as_ptr() as *const __m128i;
        debug_assert_eq!(dst as usize % LINE_BYTES, 0);
        // SAFETY: `dst` points to 64 writable bytes (n · size_of::<F>() = 64, the slice above
        // is bounds-checked), 64-byte aligned (the caller's contract); `src` to 64 readable
        // bytes, loaded unaligned. SSE2 is part of x86-64.
        unsafe {
            for j in 0..4 {
                _mm_stream_si128(dst.add(j), _mm_loadu_si128(src.add(j)));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    dst.copy_from_slice(src);
}

/// How many elements of `dst` come before its first 64-byte boundary (all of them if it has
/// none).
#[inline(always)]
pub(crate) fn head<F: Float>(dst: &[F]) -> usize {
    let mis = dst.as_ptr() as usize % LINE_BYTES;
    if mis == 0 {
        0
    } else {
        ((LINE_BYTES - mis) / std::mem::size_of::<F>()).min(dst.len())
    }
}

/// Copies `src` into `dst` (the same length): every whole aligned line of `dst` streamed, the
/// partial lines at its two ends written with ordinary stores. Call [`fence`] before the
/// thread's later writes are to be ordered after these.
#[inline(always)]
pub(crate) fn copy<F: Float>(src: &[F], dst: &mut [F]) {
    assert_eq!(src.len(), dst.len(), "a copy between slices of one length");
    let per_line = LINE_BYTES / std::mem::size_of::<F>();
    let head = head(dst);
    let body_end = head + (dst.len() - head) / per_line * per_line;
    dst[..head].copy_from_slice(&src[..head]);
    let mut k = head;
    while k < body_end {
        // SAFETY: `dst[head]` is the first element on a 64-byte boundary ([`head`]), and `k`
        // moves from it in whole lines.
        unsafe { line(&mut dst[k..k + per_line], &src[k..k + per_line]) };
        k += per_line;
    }
    dst[body_end..].copy_from_slice(&src[body_end..]);
}

/// Orders the thread's streaming stores before anything it writes next.
#[inline(always)]
pub(crate) fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a store fence has no preconditions.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset and length around a few lines, in both float types: the copy writes
    /// exactly the source, and nothing outside the destination.
    fn copies_exactly<F: Float>() {
        let src: Vec<F> = (0..200).map(|k| F::from_usize(k + 1)).collect();
        for offset in 0..20 {
            for len in [0, 1, 3, 15, 16, 17, 31, 32, 33, 64, 100, 150] {
                let mut buf = [F::from_usize(9999); 200];
                let dst = &mut buf[offset..offset + len];
                copy(&src[..len], dst);
                fence();
                assert_eq!(&buf[offset..offset + len], &src[..len], "{offset}+{len}");
                // Negative control: the elements around the destination are untouched.
                assert!(buf[..offset]
                    .iter()
                    .chain(&buf[offset + len..])
                    .all(|&x| x == F::from_usize(9999)));
            }
        }
    }

    #[test]
    fn the_streaming_copy_writes_the_source_and_nothing_else() {
        copies_exactly::<f32>();
        copies_exactly::<f64>();
    }

    #[test]
    fn the_head_reaches_the_first_line_boundary() {
        let buf = vec![0f32; 64];
        for offset in 0..32 {
            let s = &buf[offset..];
            let h = head(s);
            assert_eq!(
                (s[h..].as_ptr() as usize) % LINE_BYTES,
                0,
                "offset {offset}"
            );
            assert!(h < LINE_BYTES / 4, "offset {offset}: head {h}");
        }
        // A slice with no boundary in it: all of it is head.
        let aligned = head(&buf[..]);
        let s = &buf[aligned + 1..aligned + 5];
        assert_eq!(head(s), 4);
    }
}
