(** Prints the axioms the main theorems depend on, one group per claim (each [Print
    Assumptions] walks the whole standard-library real-number development, so the theorems of
    a claim are printed together as one conjunction: the union of their axioms).
    [check.sh] fails unless every axiom listed is one of the standard library's own. *)
Require Import RTB.Trajectory RTB.Gradients RTB.FixedPoint RTB.Certificate.

Definition C1_theorems := conj step_identity (conj C1_residual C1_residual_placed).
Definition C2_theorems := conj C2_loss C2_batch.
Definition C3_theorems :=
  conj C3_shared (conj C3_independent_V (conj C3_surrogate
  (conj C3_shared_std (conj C3_independent_V_std C3_surrogate_std)))).
Definition C4_theorems := conj C4_window_inner C4_window_terminal.
Definition C5_theorems :=
  conj F_terminal (conj F_backward (conj qstar_balance (conj qstar_sum_one
  (conj qstar_telescope (conj paths_complete (conj paths_cover (conj C5_window_zero
  (conj C5_residual_zero (conj C5_KL (conj C5_J_optimum
  (conj C5_consistency_zero V_star_terminal))))))))))).
Definition C7_negative_theorems :=
  conj missing_half_fails (conj alpha_not_squared_fails (conj flipped_sign_fails
  (conj beta_on_ratio_fails (conj discount_fails
  (conj surrogate_factor_not_alpha_sq shared_factor_not_alpha))))).
Definition certificate_theorems :=
  conj ln_factor (conj C1_certificate (conj C2_certificate
  (conj C3_logZ_certificate (conj C3_V_certificate
  (conj TF_terminal (conj TF_backward (conj T_KL T_J_optimum))))))).

Goal True. idtac "== C1_theorems:". Abort.
Print Assumptions C1_theorems.
Goal True. idtac "== C2_theorems:". Abort.
Print Assumptions C2_theorems.
Goal True. idtac "== C3_theorems:". Abort.
Print Assumptions C3_theorems.
Goal True. idtac "== C4_theorems:". Abort.
Print Assumptions C4_theorems.
Goal True. idtac "== C5_theorems:". Abort.
Print Assumptions C5_theorems.
Goal True. idtac "== C7_negative_theorems:". Abort.
Print Assumptions C7_negative_theorems.
Goal True. idtac "== certificate_theorems:". Abort.
Print Assumptions certificate_theorems.
