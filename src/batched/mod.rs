//! Fused f32/f64 batched loss-and-gradient kernels (nalgebra, rayon; optional CUDA).
