# Type stubs of the native module (src/lib.rs); the public API is in __init__.py, losses.py.
from typing import Dict, List, Optional

import numpy as np

__version__: str

class InputError(ValueError): ...

def export_batch(
    seed: int = 0, batch: int = 64, steps: int = 12, beta: float = 1.5, log_z: float = 0.7
) -> Dict[str, object]: ...
def classify(
    log_q: np.ndarray,
    log_p: np.ndarray,
    lengths: np.ndarray,
    log_r: np.ndarray,
    beta: float,
    log_z: float,
    loss: np.ndarray,
    grad_log_z: Optional[float] = None,
    grad_log_q: Optional[np.ndarray] = None,
    tol: float = 1e-4,
) -> str: ...
def kernel(
    name: str,
    log_q: np.ndarray,
    log_p: np.ndarray,
    lengths: np.ndarray,
    log_r: np.ndarray,
    beta: float,
    scalar: float = 0.0,
    dense: bool = True,
    window_start: Optional[np.ndarray] = None,
    window_end: Optional[np.ndarray] = None,
    value_start: Optional[np.ndarray] = None,
    value_end: Optional[np.ndarray] = None,
) -> Dict[str, object]: ...
def verify(
    paths: List[str], mutant: Optional[str] = None, max_trajectories: int = 100000, max_windows: int = 200000
) -> str: ...
def gradcheck(
    batch: int = 4096,
    steps: int = 64,
    dtype: str = "f32",
    beta: float = 1.5,
    seed: int = 0,
    mutant: Optional[str] = None,
    exact_spec: List[str] = [],
    exact_samples: int = 256,
) -> str: ...
