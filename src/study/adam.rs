//! Adam (Kingma & Ba), written once for every method and parameter group.
use super::StudyError;

/// Adam's state for one parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl Adam {
    /// Adam with learning rate `lr` and the usual `β1 = 0.9`, `β2 = 0.999`, `ε = 1e-8`, for
    /// `len` parameters.
    pub fn new(len: usize, lr: f64) -> Result<Self, StudyError> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(StudyError::Config(format!(
                "learning rate {lr} must be > 0"
            )));
        }
        Ok(Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; len],
            v: vec![0.0; len],
            t: 0,
        })
    }

    /// One step `θ ← θ − lr · m̂ / (√v̂ + ε)` from the gradient `grad`.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) -> Result<(), StudyError> {
        if params.len() != self.m.len() || grad.len() != self.m.len() {
            return Err(StudyError::Config(format!(
                "Adam: {} parameters and {} gradients for a state of {}",
                params.len(),
                grad.len(),
                self.m.len()
            )));
        }
        if let Some(i) = grad.iter().position(|g| !g.is_finite()) {
            return Err(StudyError::Diverged(format!(
                "gradient entry {i} is {}",
                grad[i]
            )));
        }
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let step = self.lr * (1.0 - b2.powi(self.t)).sqrt() / (1.0 - b1.powi(self.t));
        for (((p, &g), m), v) in params
            .iter_mut()
            .zip(grad)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step * *m / (v.sqrt() + self.eps);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_a_quadratic() {
        let mut x = vec![3.0, -2.0];
        let mut opt = Adam::new(2, 0.1).unwrap();
        for _ in 0..2000 {
            let g: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
            opt.step(&mut x, &g).unwrap();
        }
        assert!(x.iter().all(|v| v.abs() < 1e-3), "{x:?}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(Adam::new(1, 0.0).is_err());
        let mut opt = Adam::new(2, 0.1).unwrap();
        assert!(opt.step(&mut [0.0], &[0.0]).is_err());
        assert!(opt.step(&mut [0.0, 0.0], &[f64::NAN, 0.0]).is_err());
    }
}
