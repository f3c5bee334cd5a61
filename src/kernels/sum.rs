//! Pairwise summation with a known worst-case rounding depth.
//!
//! Every long sum in the kernels goes through [`lanes_sum`] / [`sum_by`]: eight interleaved
//! lanes (lane `j` adds the terms `j, j+8, j+16, …` in order, which the compiler turns into SIMD
//! without reassociating anything), blocks of at most [`BLOCK`] terms, and a balanced binary
//! tree above the blocks. [`depth`] returns the largest number of rounded additions any single
//! term goes through; for a sum computed this way, `|ŝ − s| ≤ γ_depth · Σ|x_i|` with
//! `γ_k = k u / (1 − k u)` (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2).
use super::float::Float;
use super::simd::has_avx;

/// Number of interleaved lanes.
pub const LANES: usize = 8;
/// Largest block summed by lanes alone; longer sums split in halves (block-aligned).
pub const BLOCK: usize = 256;

#[inline(always)]
fn combine<F: Float>(acc: [F; LANES]) -> F {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Worst-case number of rounded additions on one term's path in a sum of `n` terms.
pub fn depth(n: usize) -> usize {
    if n <= 1 {
        0
    } else if n <= BLOCK {
        // A lane holds at most ⌈n/8⌉ terms: ⌈n/8⌉ − 1 additions after the first (0 + x is
        // exact), then three levels combining the lanes.
        n.div_ceil(LANES) - 1 + 3
    } else {
        let (l, r) = split(n);
        1 + depth(l).max(depth(r))
    }
}

#[inline(always)]
fn split(n: usize) -> (usize, usize) {
    let blocks = n.div_ceil(BLOCK);
    let left = (blocks / 2).max(1) * BLOCK;
    (left, n - left)
}

/// Rounding depth of the CUDA kernels' warp sums: lane `j` of a 32-lane warp adds terms
/// `j, j+32, …` in order, then five shuffle levels combine the lanes (levels whose partner
/// lanes hold only exact zeros do not round).
pub fn cuda_depth(n: usize) -> usize {
    if n <= 1 {
        0
    } else {
        n.div_ceil(32) - 1 + (usize::BITS - (n.min(32) - 1).leading_zeros()) as usize
    }
}

/// The summation order of a backend, which fixes the rounding depth its error bounds use.
///
/// Each backend's bound uses its own order's depth: the CPU's pairwise tree (depth
/// `O(log n)` above a block) or the CUDA warp sums (`⌈n/32⌉ − 1 + 5`: linear in `n`). A bound
/// valid for both would carry the CUDA depth into every CPU check: at `B = 65536` the batch
/// mean's depth would be 2052 instead of 42.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summation {
    /// [`lanes_sum`] / [`sum_by`]: eight lanes, blocks of [`BLOCK`], a balanced tree.
    Cpu,
    /// The CUDA kernels' warp sums.
    Cuda,
}

impl Summation {
    /// Worst-case number of rounded additions on one term's path in a sum of `n` terms.
    pub fn depth(self, n: usize) -> usize {
        match self {
            Summation::Cpu => depth(n),
            Summation::Cuda => cuda_depth(n),
        }
    }
}

/// Most blocks a long sum keeps on the stack; longer sums recurse (see [`lanes_sum`]).
const MAX_LEAVES: usize = 64;

/// The pairwise tree above the blocks: the same split as [`split`] (the left half takes
/// `⌊blocks/2⌋` blocks), so the order of additions is exactly that of the recursive form.
fn tree<F: Float>(leaves: &[F]) -> F {
    if leaves.len() == 1 {
        leaves[0]
    } else {
        let h = leaves.len() / 2;
        tree(&leaves[..h]) + tree(&leaves[h..])
    }
}

/// `Σ_t f(a[t], b[t])` over one block (at most [`BLOCK`] terms) by the eight lanes.
#[inline(always)]
fn block_sum<F: Float>(a: &[F], b: &[F], f: impl Fn(F, F) -> F + Copy) -> F {
    let mut acc = [F::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for j in 0..LANES {
            acc[j] += f(xa[j], xb[j]);
        }
    }
    for j in 0..ra.len() {
        acc[j] += f(ra[j], rb[j]);
    }
    combine(acc)
}

/// Both sums of [`lanes_sum2`] over one block.
#[inline(always)]
fn block_sum2<F: Float>(
    a: &[F],
    b: &[F],
    f: impl Fn(F, F) -> F + Copy,
    g: impl Fn(F, F) -> F + Copy,
) -> (F, F) {
    let mut acc = [F::ZERO; LANES];
    let mut acc2 = [F::ZERO; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for j in 0..LANES {
            acc[j] += f(xa[j], xb[j]);
            acc2[j] += g(xa[j], xb[j]);
        }
    }
    for j in 0..ra.len() {
        acc[j] += f(ra[j], rb[j]);
        acc2[j] += g(ra[j], rb[j]);
    }
    (combine(acc), combine(acc2))
}

/// `Σ_t (c·a[t] + d·b[t])` over one block, as [`block_sum`] with `f = |x, y| c·x + d·y`, by
/// explicit 256-bit vectors ([`Float::linear_lanes_avx`]: whole chunks of eight, then the
/// remainder as one masked step): the vectoriser turned that closure's two products into
/// pair loads and shuffles (four times the instructions of the subtraction's loop; `perf
/// annotate` of Trust-PCL), and its remainder went through a masked store to the stack and a
/// reload. The vectors add lane `j`'s terms in the same order with the same roundings (no
/// FMA), so the sum is bit-identical to [`block_sum`]'s (tests: `fused::tests::dispatched_
/// phase1_equals_the_baseline_bit_for_bit`, whose baseline runs the scalar loop, and
/// `tests::linear_vectors_match_the_scalar_lanes_at_every_length`).
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn block_sum_linear<F: Float>(a: &[F], b: &[F], c: F, d: F) -> F {
    let mut acc = [F::ZERO; LANES];
    // SAFETY: the caller checked AVX; the slices are equally long.
    unsafe { F::linear_lanes_avx(a, b, c, d, &mut acc) };
    combine(acc)
}

/// `Σ_t f(a[t], b[t])` over two equally long slices, by pairwise summation: blocks of
/// [`BLOCK`] terms by eight lanes, a balanced tree above them.
///
/// Written without recursion up to [`MAX_LEAVES`] blocks (the block sums go to the stack,
/// then [`tree`] adds them), so that the whole loop inlines into the SIMD-dispatched callers
/// ([`super::simd`]); a recursive function would be compiled once, for the baseline.
#[inline(always)]
pub fn lanes_sum<F: Float>(a: &[F], b: &[F], f: impl Fn(F, F) -> F + Copy) -> F {
    by_blocks(a, b, Closure(f))
}

/// [`lanes_sum`] of `c·a[t] + d·b[t]`, bit for bit, by explicit AVX vectors. The caller
/// (`fused::RowTask`) decides where the vectors pay, and asks the CPU once per pass rather
/// than once per row (the check per row was about 1 % of a two-sum kernel's profile).
///
/// # Safety
/// The CPU must have AVX ([`has_avx`]).
#[inline(always)]
pub(crate) unsafe fn lanes_sum_linear<F: Float>(a: &[F], b: &[F], c: F, d: F) -> F {
    debug_assert!(has_avx());
    by_blocks(a, b, Linear { c, d })
}

/// How one block is summed (a trait rather than a closure so that the block's loop is
/// `#[inline(always)]` into the dispatched callers: a closure was compiled apart, for the
/// baseline).
trait Block<F: Float>: Copy {
    fn sum(self, a: &[F], b: &[F]) -> F;
}

/// [`block_sum`] of a closure.
#[derive(Clone, Copy)]
struct Closure<G>(G);

impl<F: Float, G: Fn(F, F) -> F + Copy> Block<F> for Closure<G> {
    #[inline(always)]
    fn sum(self, a: &[F], b: &[F]) -> F {
        block_sum(a, b, self.0)
    }
}

/// [`block_sum_linear`]; built only where the CPU has AVX (the precondition of
/// [`lanes_sum_linear`]).
#[derive(Clone, Copy)]
struct Linear<F> {
    c: F,
    d: F,
}

impl<F: Float> Block<F> for Linear<F> {
    #[inline(always)]
    fn sum(self, a: &[F], b: &[F]) -> F {
        // SAFETY: `Linear` is built only where the CPU has AVX (the precondition of
        // `lanes_sum_linear`, its only constructor).
        unsafe { block_sum_linear(a, b, self.c, self.d) }
    }
}

/// The pairwise tree of [`lanes_sum`] over the sums of its blocks.
#[inline(always)]
fn by_blocks<F: Float>(a: &[F], b: &[F], block: impl Block<F>) -> F {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n <= BLOCK {
        return block.sum(a, b);
    }
    let blocks = n.div_ceil(BLOCK);
    if blocks > MAX_LEAVES {
        return by_blocks_split(a, b, block);
    }
    let mut leaves = [F::ZERO; MAX_LEAVES];
    for (k, (x, y)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
        leaves[k] = block.sum(x, y);
    }
    tree(&leaves[..blocks])
}

fn by_blocks_split<F: Float>(a: &[F], b: &[F], block: impl Block<F>) -> F {
    let (l, _) = split(a.len());
    by_blocks(&a[..l], &b[..l], block) + by_blocks(&a[l..], &b[l..], block)
}

/// Both sums of [`block_sum2`] with `f = |x, y| c·x + d·y` and `g = |x, _| x`, the whole
/// chunks by explicit vectors ([`Float::linear_q_lanes_avx`]), bit for bit.
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn block_sum2_linear_q<F: Float>(a: &[F], b: &[F], c: F, d: F) -> (F, F) {
    let mut acc = [F::ZERO; LANES];
    let mut acc2 = [F::ZERO; LANES];
    // SAFETY: the caller checked AVX; the slices are equally long.
    unsafe { F::linear_q_lanes_avx(a, b, c, d, &mut acc, &mut acc2) };
    (combine(acc), combine(acc2))
}

/// [`lanes_sum2`] of `c·a[t] + d·b[t]` and `a[t]`, bit for bit, by explicit AVX vectors
/// (see [`lanes_sum_linear`]).
///
/// # Safety
/// The CPU must have AVX ([`has_avx`]).
#[inline(always)]
pub(crate) unsafe fn lanes_sum2_linear_q<F: Float>(a: &[F], b: &[F], c: F, d: F) -> (F, F) {
    debug_assert!(has_avx());
    by_blocks2(a, b, LinearQ { c, d })
}

/// How one block's two sums are summed ([`Block`] for [`lanes_sum2`]).
trait Block2<F: Float>: Copy {
    fn sum2(self, a: &[F], b: &[F]) -> (F, F);
}

/// [`block_sum2`] of two closures.
#[derive(Clone, Copy)]
struct Closures<G, H>(G, H);

impl<F: Float, G: Fn(F, F) -> F + Copy, H: Fn(F, F) -> F + Copy> Block2<F> for Closures<G, H> {
    #[inline(always)]
    fn sum2(self, a: &[F], b: &[F]) -> (F, F) {
        block_sum2(a, b, self.0, self.1)
    }
}

/// [`block_sum2_linear_q`]; built only where the CPU has AVX (the precondition of
/// [`lanes_sum2_linear_q`]).
#[derive(Clone, Copy)]
struct LinearQ<F> {
    c: F,
    d: F,
}

impl<F: Float> Block2<F> for LinearQ<F> {
    #[inline(always)]
    fn sum2(self, a: &[F], b: &[F]) -> (F, F) {
        // SAFETY: `LinearQ` is built only where the CPU has AVX (the precondition of
        // `lanes_sum2_linear_q`, its only constructor).
        unsafe { block_sum2_linear_q(a, b, self.c, self.d) }
    }
}

/// [`by_blocks`] for two sums: each follows the same tree.
#[inline(always)]
fn by_blocks2<F: Float>(a: &[F], b: &[F], block: impl Block2<F>) -> (F, F) {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n <= BLOCK {
        return block.sum2(a, b);
    }
    let blocks = n.div_ceil(BLOCK);
    if blocks > MAX_LEAVES {
        return by_blocks2_split(a, b, block);
    }
    let mut leaves = [F::ZERO; MAX_LEAVES];
    let mut leaves2 = [F::ZERO; MAX_LEAVES];
    for (k, (x, y)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
        (leaves[k], leaves2[k]) = block.sum2(x, y);
    }
    (tree(&leaves[..blocks]), tree(&leaves2[..blocks]))
}

fn by_blocks2_split<F: Float>(a: &[F], b: &[F], block: impl Block2<F>) -> (F, F) {
    let (l, _) = split(a.len());
    let (x0, y0) = by_blocks2(&a[..l], &b[..l], block);
    let (x1, y1) = by_blocks2(&a[l..], &b[l..], block);
    (x0 + x1, y0 + y1)
}

/// Two sums `(Σ f(a,b), Σ g(a,b))` over the same slices in one read, each summed exactly as
/// [`lanes_sum`] would.
#[inline(always)]
pub fn lanes_sum2<F: Float>(
    a: &[F],
    b: &[F],
    f: impl Fn(F, F) -> F + Copy,
    g: impl Fn(F, F) -> F + Copy,
) -> (F, F) {
    by_blocks2(a, b, Closures(f, g))
}

/// `Σ_{i<n} f(i)` by the same pairwise scheme (used over the batch dimension).
pub fn sum_by<F: Float>(n: usize, f: &(impl Fn(usize) -> F + Sync)) -> F {
    sum_range(0, n, f)
}

fn sum_range<F: Float>(lo: usize, n: usize, f: &(impl Fn(usize) -> F + Sync)) -> F {
    if n > BLOCK {
        let (l, r) = split(n);
        if n > 1 << 16 {
            let (x, y) = rayon::join(|| sum_range(lo, l, f), || sum_range(lo + l, r, f));
            return x + y;
        }
        return sum_range(lo, l, f) + sum_range(lo + l, r, f);
    }
    let mut acc = [F::ZERO; LANES];
    // Whole groups of `LANES` terms first (lane `j` still adds terms `j, j + LANES, …` in
    // order, so the sum is the same bits), which the compiler can keep in registers.
    let whole = n - n % LANES;
    for k in (0..whole).step_by(LANES) {
        for (j, a) in acc.iter_mut().enumerate() {
            *a += f(lo + k + j);
        }
    }
    for k in whole..n {
        acc[k % LANES] += f(lo + k);
    }
    combine(acc)
}

/// One leaf of [`sum_by`]'s tree, built term by term: term `k` of the block goes to lane
/// `k mod 8`, as [`sum_by`] adds it, so a pass that visits the rows of a block in order can sum
/// per-row values on the fly (no `B`-long vector to write and read back) and
/// [`sum_leaves`] then gives [`sum_by`]'s bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leaf<F> {
    acc: [F; LANES],
}

impl<F: Float> Leaf<F> {
    /// An empty leaf (every lane `+0`, as [`sum_by`] starts).
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self {
            acc: [F::ZERO; LANES],
        }
    }

    /// Adds term `k` of the block (`k` counted from the block's first term).
    #[inline(always)]
    pub(crate) fn add(&mut self, k: usize, x: F) {
        self.acc[k % LANES] += x;
    }

    /// The block's sum.
    #[inline(always)]
    pub(crate) fn sum(self) -> F {
        combine(self.acc)
    }
}

/// [`sum_by`] over `n` terms from its leaves: leaf `c` is the sum of terms
/// `c·BLOCK .. (c + 1)·BLOCK` built by [`Leaf`] (`n.div_ceil(BLOCK)` leaves; none for `n = 0`).
/// The tree above the blocks is [`sum_by`]'s, so the result is the same bits (test:
/// `leaves_give_the_bits_of_sum_by`).
pub(crate) fn sum_leaves<F: Float>(leaves: &[F]) -> F {
    if leaves.is_empty() {
        F::ZERO
    } else {
        tree(leaves)
    }
}

/// `Σ x_i` of a slice by pairwise summation.
pub fn sum_slice<F: Float>(x: &[F]) -> F {
    sum_by(x.len(), &|i| x[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_right_on_integers() {
        for n in [0, 1, 7, 8, 9, 100, 256, 257, 1000, 5000, 70_000] {
            let a: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let b = vec![1.0; n];
            let want = (n * (n.max(1) - 1) / 2) as f64;
            assert_eq!(lanes_sum(&a, &b, |x, _| x), want, "n={n}");
            assert_eq!(lanes_sum2(&a, &b, |x, _| x, |_, y| y), (want, n as f64));
            assert_eq!(sum_slice(&a), want);
        }
    }

    /// Inputs whose lane sums round at almost every step.
    fn inputs<F: Float>(n: usize) -> (Vec<F>, Vec<F>) {
        let v = |i: usize, k: usize| {
            F::from_f64(((i * k % 1009) as f64 - 504.0) * 1.000_123_7e-2 + (i % 5) as f64 * 1e3)
        };
        (
            (0..n).map(|i| v(i, 7919)).collect(),
            (0..n).map(|i| v(i, 104_729)).collect(),
        )
    }

    /// The explicit vectors (whole chunks of eight, then one masked step) give the bits of the
    /// scalar lanes at every length from 0 to three blocks, so at every remainder 0–7 and at
    /// lengths under eight (the masked step alone), for the common coefficients.
    fn linear_vectors_match_the_scalar_lanes<F: Float>() {
        if !has_avx() {
            return;
        }
        let coefficients = [
            (F::ONE, -F::ONE),
            (F::ONE, F::ONE),
            (-F::from_f64(0.75), F::from_f64(0.75)),
            (F::from_f64(1.25), F::from_f64(-3.5)),
        ];
        let bits = |x: F| x.to_f64().to_bits();
        for n in 0..=3 * BLOCK + 9 {
            let (a, b) = inputs::<F>(n);
            for (c, d) in coefficients {
                let scalar = lanes_sum(&a, &b, |x, y| c * x + d * y);
                // SAFETY: AVX checked above.
                let vector = unsafe { lanes_sum_linear(&a, &b, c, d) };
                assert_eq!(bits(vector), bits(scalar), "{} n={n} c={c} d={d}", F::NAME);
                let scalar2 = lanes_sum2(&a, &b, |x, y| c * x + d * y, |x, _| x);
                // SAFETY: as above.
                let vector2 = unsafe { lanes_sum2_linear_q(&a, &b, c, d) };
                assert_eq!(bits(vector2.0), bits(scalar2.0), "{} n={n}", F::NAME);
                assert_eq!(bits(vector2.1), bits(scalar2.1), "{} n={n}", F::NAME);
            }
        }
    }

    #[test]
    fn linear_vectors_match_the_scalar_lanes_at_every_length() {
        linear_vectors_match_the_scalar_lanes::<f32>();
        linear_vectors_match_the_scalar_lanes::<f64>();
    }

    /// Negative control of the test above: with these inputs, a tail put into the last `r`
    /// lanes instead of the first `r` (a wrong mask) changes the bits at some length of every
    /// remainder `r` = 1–7, so the test sees a misplaced tail whatever the remainder.
    #[test]
    fn a_tail_in_the_wrong_lanes_changes_the_bits() {
        let mut seen = [false; LANES];
        for n in 9..200 {
            let r = n % LANES;
            let (a, b) = inputs::<f32>(n);
            let right = lanes_sum(&a, &b, |x, y| x - y);
            let mut lanes = [0.0f32; LANES];
            let whole = n - r;
            for k in 0..whole {
                lanes[k % LANES] += a[k] - b[k];
            }
            for j in 0..r {
                lanes[LANES - r + j] += a[whole + j] - b[whole + j];
            }
            seen[r] |= combine(lanes).to_bits() != right.to_bits();
        }
        // Remainder 0 has no tail; 1–7 must each have been caught.
        assert_eq!(seen, [false, true, true, true, true, true, true, true]);
    }

    /// The recursive definition the stack form must reproduce exactly.
    fn recursive(a: &[f32]) -> f32 {
        if a.len() <= BLOCK {
            return block_sum(a, a, |x, _| x);
        }
        let (l, _) = split(a.len());
        recursive(&a[..l]) + recursive(&a[l..])
    }

    /// Leaves built term by term and added by `sum_leaves` are `sum_by`'s bits, for sizes
    /// around the block, the stack limit and the parallel split; a tree in another shape
    /// (here: the leaves added left to right) changes the bits.
    #[test]
    fn leaves_give_the_bits_of_sum_by() {
        let term =
            |i: usize| ((i * 7919 % 1013) as f32 - 506.0) * 1.000_123e-3 + 1e3 * (i % 3) as f32;
        let mut reordered_differs = false;
        for n in [
            0usize,
            1,
            7,
            8,
            255,
            256,
            257,
            1000,
            64 * 256 + 1,
            (1 << 16) + 300,
            200_000,
        ] {
            let leaves: Vec<f32> = (0..n.div_ceil(BLOCK))
                .map(|c| {
                    let mut leaf = Leaf::new();
                    for k in 0..BLOCK.min(n - c * BLOCK) {
                        leaf.add(k, term(c * BLOCK + k));
                    }
                    leaf.sum()
                })
                .collect();
            let want = sum_by(n, &term);
            assert_eq!(sum_leaves(&leaves).to_bits(), want.to_bits(), "n={n}");
            let left_to_right = leaves.iter().fold(0.0f32, |s, &x| s + x);
            reordered_differs |= left_to_right.to_bits() != want.to_bits();
        }
        assert!(
            reordered_differs,
            "the negative control must change the bits somewhere"
        );
    }

    #[test]
    fn stack_tree_adds_in_the_recursive_order() {
        for n in [
            257,
            511,
            512,
            513,
            1000,
            3 * 256 + 1,
            64 * 256,
            64 * 256 + 1,
            100_000,
        ] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) * 1.000_123e-3)
                .collect();
            assert_eq!(
                lanes_sum(&a, &a, |x, _| x).to_bits(),
                recursive(&a).to_bits(),
                "n={n}"
            );
            let (x, y) = lanes_sum2(&a, &a, |x, _| x, |_, y| -y);
            assert_eq!(x.to_bits(), recursive(&a).to_bits());
            assert_eq!(y.to_bits(), (-recursive(&a)).to_bits());
        }
        // Negative control: a left-leaning tree over the same blocks gives other bits here.
        // Block sums 1e8, 1, −1e8, 1: the tree gives (1e8 + 1) + (−1e8 + 1) = 0 in f32, a
        // left fold ((1e8 + 1) − 1e8) + 1 = 1.
        let mut a = vec![0.0f32; 4 * BLOCK];
        for (k, v) in [1e8, 1.0, -1e8, 1.0].into_iter().enumerate() {
            a[k * BLOCK] = v;
        }
        assert_eq!(lanes_sum(&a, &a, |x, _| x), 0.0);
        let left: f32 = a
            .chunks(BLOCK)
            .map(|c| block_sum(c, c, |x, _| x))
            .fold(0.0, |s, x| s + x);
        assert_ne!(left.to_bits(), lanes_sum(&a, &a, |x, _| x).to_bits());
    }

    #[test]
    fn batch_sums_follow_the_row_sums_lanes_and_tree() {
        // `sum_by` (over the batch) and `lanes_sum` (over a row) share one rounding depth, so
        // they must add in the same order: lane `j` takes terms `j, j + 8, …`, then the tree.
        for n in [1, 7, 8, 9, 100, 255, 256, 257, 1000, 4099, 100_000] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 1013) as f32 - 506.0) * 1.000_123e-3)
                .collect();
            assert_eq!(sum_slice(&a).to_bits(), recursive(&a).to_bits(), "n={n}");
        }
        // Negative control: 1e8 and −1e8 in lane 0 cancel exactly and the 1 in lane 1
        // survives; a left fold loses the 1 in 1e8 + 1 (f32), so the order is visible.
        let mut a = vec![0.0f32; 16];
        (a[0], a[1], a[8]) = (1e8, 1.0, -1e8);
        assert_eq!(sum_slice(&a), 1.0);
        assert_eq!(a.iter().fold(0.0f32, |s, x| s + x), 0.0);
    }

    #[test]
    fn depth_is_logarithmic_above_a_block() {
        assert_eq!(depth(1), 0);
        assert_eq!(depth(8), 3);
        assert_eq!(depth(100), 12 + 3);
        assert_eq!(depth(256), 31 + 3);
        assert!(depth(1 << 20) <= 34 + 12);
    }

    #[test]
    fn cuda_depth_counts_shuffle_levels() {
        assert_eq!(cuda_depth(1), 0);
        assert_eq!(cuda_depth(2), 1);
        assert_eq!(cuda_depth(32), 5);
        assert_eq!(cuda_depth(33), 1 + 5);
        assert_eq!(Summation::Cpu.depth(100), 15);
        assert_eq!(Summation::Cuda.depth(100), 8);
        // At the bench's batch size the CPU tree is 50× shallower than the warp sums.
        assert_eq!(Summation::Cpu.depth(65536), 42);
        assert_eq!(Summation::Cuda.depth(65536), 2052);
    }

    #[test]
    fn error_stays_within_gamma_depth() {
        // Terms of mixed sign and magnitude in f32, the exact sum in f64 (exact here: every
        // partial sum of these f32 values is representable in f64 with room to spare).
        let n = 3000;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1.000_123)
            .collect();
        let exact: f64 = x.iter().map(|&v| v as f64).sum();
        let abs: f64 = x.iter().map(|&v| (v as f64).abs()).sum();
        let k = depth(n) as f64;
        let u = <f32 as Float>::UNIT_ROUNDOFF;
        let got = sum_slice(&x) as f64;
        assert!((got - exact).abs() <= k * u / (1.0 - k * u) * abs);
    }
}
