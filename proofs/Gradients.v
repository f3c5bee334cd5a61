(** * C3: the gradient identities.

    Two readings of "derivative":
    - [Derivation]: any map [D] on real functions of the parameters that respects pointwise
      equality, is linear and obeys the Leibniz rule (every partial derivative, hence every
      gradient component, is one; so is every directional derivative);
    - the standard library's [derivable_pt_lim] along any one-parameter family [t ↦ θ(t)]
      (a coordinate line gives a partial derivative), which is a concrete, non-vacuous instance. *)
Require Import Reals Lra List.
Require Import RTB.Trajectory.
Import ListNotations.
Open Scope R_scope.

Section Abstract.
Variable Theta : Type.

Record Derivation := {
  D :> (Theta -> R) -> Theta -> R;
  D_ext : forall f g, (forall y, f y = g y) -> forall x, D f x = D g x;
  D_plus : forall f g x, D (fun y => f y + g y) x = D f x + D g x;
  D_scal : forall c f x, D (fun y => c * f y) x = c * D f x;
  D_mult : forall f g x, D (fun y => f y * g y) x = D f x * g x + f x * D g x;
  D_const : forall c x, D (fun _ => c) x = 0
}.

Lemma D_half_sq : forall (d : Derivation) f x, d (fun y => half_sq (f y)) x = f x * d f x.
Proof.
  intros d f x. unfold half_sq.
  rewrite (D_ext d _ (fun y => / 2 * (f y * f y))) by (intros; ring).
  rewrite D_scal, D_mult. field.
Qed.

Lemma D_opp : forall (d : Derivation) f x, d (fun y => - f y) x = - d f x.
Proof.
  intros d f x. rewrite (D_ext d _ (fun y => -1 * f y)) by (intros; ring).
  rewrite D_scal. ring.
Qed.

Lemma D_minus : forall (d : Derivation) f g x, d (fun y => f y - g y) x = d f x - d g x.
Proof.
  intros d f g x. rewrite (D_ext d _ (fun y => f y + - g y)) by (intros; ring).
  rewrite D_plus, D_opp. ring.
Qed.

Variable beta : R.
Hypothesis beta_pos : 0 < beta.
Variable lr : R.
(** The trajectory as a function of the parameters (its [lq] depend on θ; nothing is
    assumed about how), and the learned scalar [log Z]. *)
Variable traj : Theta -> list step.
Hypothesis rewards : forall y, sum_rw (traj y) = lr.
Variable logZ : Theta -> R.

Definition L_tpcl y := half_sq (consistency 1 0 (/ beta) (/ beta * logZ y) 0 (traj y)).
Definition L_rtb y := half_sq (rtb_residual beta (logZ y) lr (traj y)).

(** Shared scalar [V(s0) := alpha log Z]: every derivative, with respect to θ or to log Z,
    carries the factor [alpha^2]. *)
Theorem C3_shared : forall (d : Derivation) x, d L_tpcl x = (/ beta) ^ 2 * d L_rtb x.
Proof.
  intros d x. rewrite <- D_scal. apply D_ext. intros y. unfold L_tpcl, L_rtb.
  apply C2_loss; auto.
Qed.

(** [V(s0)] as its own parameter [v]; [dv] differentiates along [v] (it moves nothing
    else), [dz] along [log Z]; at [v = alpha log Z] the factor is [alpha]. *)
Variable v : Theta -> R.
Definition L_tpcl_v y := half_sq (consistency 1 0 (/ beta) (v y) 0 (traj y)).

Definition moves_only (d : Derivation) (f : Theta -> R) x :=
  d f x = 1 /\ d (fun y => sum_lq (traj y)) x = 0 /\ d (fun y => sum_lp (traj y)) x = 0
  /\ d (fun y => sum_rw (traj y)) x = 0.

Lemma D_consistency : forall (d : Derivation) u x,
  d (fun y => consistency 1 0 (/ beta) (u y) 0 (traj y)) x
  = - d u x + d (fun y => sum_rw (traj y)) x - / beta * d (fun y => sum_lq (traj y)) x
    + / beta * d (fun y => sum_lp (traj y)) x.
Proof.
  intros d u x.
  rewrite (D_ext d _ (fun y => (- u y + sum_rw (traj y)) - / beta * sum_lq (traj y)
                               + / beta * sum_lp (traj y))).
  - rewrite D_plus, D_minus, D_plus, D_opp, !D_scal. ring.
  - intros y. unfold consistency. rewrite pow1, disc_sum_one. ring.
Qed.

Lemma D_residual : forall (d : Derivation) x,
  d (fun y => rtb_residual beta (logZ y) lr (traj y)) x
  = d logZ x + d (fun y => sum_lq (traj y)) x - d (fun y => sum_lp (traj y)) x.
Proof.
  intros d x.
  rewrite (D_ext d _ (fun y => (logZ y + sum_lq (traj y)) - sum_lp (traj y)
                               + (- beta * lr))).
  - rewrite D_plus, D_minus, D_plus, D_const. ring.
  - intros y. unfold rtb_residual, rtb_residual_w. ring.
Qed.

Theorem C3_independent_V : forall (dv dz : Derivation) x,
  moves_only dv v x -> moves_only dz logZ x -> v x = / beta * logZ x ->
  dv L_tpcl_v x = / beta * dz L_rtb x.
Proof.
  intros dv dz x [Hv [Hq [Hp Hr]]] [Hz [Hq' [Hp' _]]] Hvx.
  unfold L_tpcl_v, L_rtb. rewrite !D_half_sq, D_consistency, D_residual.
  rewrite Hv, Hq, Hp, Hr, Hz, Hq', Hp', Hvx.
  rewrite (C1_residual beta (logZ x) lr (traj x) beta_pos (rewards x)). ring.
Qed.

(** The reference code's surrogate [-sg(C) · Σ log q]: [C] is frozen at the point [x]
    (stop-gradient), so the surrogate is a function of θ with the constant [C(x)].
    Its θ-gradient ([log Z] not moved) is [alpha] times RTB's. *)
Definition surrogate (x : Theta) y :=
  - consistency 1 0 (/ beta) (/ beta * logZ x) 0 (traj x) * sum_lq (traj y).

Theorem C3_surrogate : forall (d : Derivation) x,
  d logZ x = 0 -> d (fun y => sum_lp (traj y)) x = 0 ->
  d (surrogate x) x = / beta * d L_rtb x.
Proof.
  intros d x Hz Hp. unfold surrogate, L_rtb.
  rewrite D_scal, D_half_sq, D_residual, Hz, Hp.
  rewrite (C1_residual beta (logZ x) lr (traj x) beta_pos (rewards x)). ring.
Qed.

End Abstract.

(** ** The same identities with the standard library's derivatives. *)
Section Standard.

Lemma derivable_pt_lim_ext : forall f g x l,
  (forall y, f y = g y) -> derivable_pt_lim f x l -> derivable_pt_lim g x l.
Proof.
  intros f g x l H Hf eps Heps. destruct (Hf eps Heps) as [del Hd].
  exists del. intros h Hh0 Hh. rewrite <- !H. apply Hd; assumption.
Qed.

(** The same, also rewriting the derivative's value. *)
Lemma deriv_eq : forall f g x l l',
  derivable_pt_lim f x l -> (forall y, f y = g y) -> l = l' -> derivable_pt_lim g x l'.
Proof. intros f g x l l' Hf Hfg <-. exact (derivable_pt_lim_ext f g x l Hfg Hf). Qed.

Ltac fct := intros; unfold plus_fct, mult_fct, mult_real_fct, fct_cte, comp, id; try ring.

(** [y ↦ a y + b] has derivative [a]. *)
Lemma derivable_affine : forall a b x, derivable_pt_lim (fun y => a * y + b) x a.
Proof.
  intros a b x. eapply deriv_eq.
  - apply (derivable_pt_lim_plus (mult_real_fct a id) (fct_cte b)).
    + apply derivable_pt_lim_scal, derivable_pt_lim_id.
    + apply derivable_pt_lim_const.
  - fct.
  - ring.
Qed.

(** [y ↦ ½ (a y + b)^2] has derivative [a (a x + b)]. *)
Lemma derivable_half_sq_affine : forall a b x,
  derivable_pt_lim (fun y => half_sq (a * y + b)) x (a * (a * x + b)).
Proof.
  intros a b x. eapply deriv_eq.
  - apply (derivable_pt_lim_scal (mult_fct (fun y => a * y + b) (fun y => a * y + b)) (/ 2)).
    apply derivable_pt_lim_mult; apply derivable_affine.
  - fct. unfold half_sq. ring.
  - cbv beta. field.
Qed.

Variable beta lr : R.
Hypothesis beta_pos : 0 < beta.

(** Shared scalar, along any family [t ↦ (traj t, log Z t)]: if [L_RTB] has derivative [l]
    then [L_TPCL] has derivative [alpha^2 l]. *)
Theorem C3_shared_std : forall (traj : R -> list step) (logZ : R -> R) x l,
  (forall t, sum_rw (traj t) = lr) ->
  derivable_pt_lim (fun t => half_sq (rtb_residual beta (logZ t) lr (traj t))) x l ->
  derivable_pt_lim (fun t => half_sq (consistency 1 0 (/ beta) (/ beta * logZ t) 0 (traj t)))
    x ((/ beta) ^ 2 * l).
Proof.
  intros traj logZ x l Hr Hl.
  apply (derivable_pt_lim_ext
           (fun t => (/ beta) ^ 2 * half_sq (rtb_residual beta (logZ t) lr (traj t)))).
  - intros t. symmetry. apply C2_loss; auto.
  - apply (derivable_pt_lim_scal (fun t => half_sq (rtb_residual beta (logZ t) lr (traj t))));
      assumption.
Qed.

(** [V(s0)] independent: the derivative of [L_TPCL] in [V(s0)] at [alpha log Z] is
    [alpha] times the derivative of [L_RTB] in [log Z]. *)
Theorem C3_independent_V_std : forall t z l, sum_rw t = lr ->
  derivable_pt_lim (fun z' => half_sq (rtb_residual beta z' lr t)) z l ->
  derivable_pt_lim (fun v => half_sq (consistency 1 0 (/ beta) v 0 t)) (/ beta * z)
    (/ beta * l).
Proof.
  intros t z l Ht Hl.
  set (K := sum_lq t - sum_lp t - beta * lr).
  assert (Hd : derivable_pt_lim (fun z' => half_sq (rtb_residual beta z' lr t)) z (1 * (1 * z + K))).
  { apply (derivable_pt_lim_ext (fun z' => half_sq (1 * z' + K))).
    - intros; unfold rtb_residual, rtb_residual_w, K; f_equal; ring.
    - apply derivable_half_sq_affine. }
  rewrite (uniqueness_limite _ _ _ _ Hl Hd).
  set (M := sum_rw t - / beta * sum_lq t + / beta * sum_lp t).
  apply (derivable_pt_lim_ext (fun v => half_sq (-1 * v + M))).
  - intros v. unfold consistency, M. rewrite pow1, disc_sum_one. f_equal; ring.
  - replace (/ beta * (1 * (1 * z + K))) with (-1 * (-1 * (/ beta * z) + M)).
    + apply derivable_half_sq_affine.
    + unfold M, K. rewrite Ht. field. lra.
Qed.

(** The surrogate along any family [t ↦ traj t] with [log Z] and [Σ log p] fixed: if
    [Σ log q] has derivative [dq] at [x], the surrogate [-sg(C(x)) Σ log q] has derivative
    [alpha] times that of [L_RTB]. *)
Theorem C3_surrogate_std : forall (traj : R -> list step) logZ x dq l,
  (forall t, sum_rw (traj t) = lr) ->
  (forall t, sum_lp (traj t) = sum_lp (traj x)) ->
  derivable_pt_lim (fun t => sum_lq (traj t)) x dq ->
  derivable_pt_lim (fun t => half_sq (rtb_residual beta logZ lr (traj t))) x l ->
  derivable_pt_lim
    (fun t => - consistency 1 0 (/ beta) (/ beta * logZ) 0 (traj x) * sum_lq (traj t))
    x (/ beta * l).
Proof.
  intros traj logZ x dq l Hr Hp Hq Hl.
  set (K := logZ - sum_lp (traj x) - beta * lr).
  (* L_RTB = ½ (Σlq + K)^2 has derivative (Σlq(x) + K) dq: chain rule. *)
  assert (Hd : derivable_pt_lim (fun t => half_sq (rtb_residual beta logZ lr (traj t))) x
                 ((1 * (1 * sum_lq (traj x) + K)) * dq)).
  { apply (derivable_pt_lim_ext (comp (fun u => half_sq (1 * u + K)) (fun t => sum_lq (traj t)))).
    - intros t. unfold comp, rtb_residual, rtb_residual_w, K. rewrite (Hp t). f_equal; ring.
    - apply derivable_pt_lim_comp; [assumption | apply derivable_half_sq_affine]. }
  rewrite (uniqueness_limite _ _ _ _ Hl Hd).
  replace (/ beta * (1 * (1 * sum_lq (traj x) + K) * dq))
    with (- consistency 1 0 (/ beta) (/ beta * logZ) 0 (traj x) * dq).
  - apply (derivable_pt_lim_scal (fun t => sum_lq (traj t))); assumption.
  - rewrite (C1_residual beta logZ lr (traj x) beta_pos (Hr x)).
    unfold rtb_residual, rtb_residual_w, K. ring.
Qed.

End Standard.

(** ** Negative controls for the factors (C7): the surrogate's factor is not [alpha^2], and the
    shared factor is not [alpha], for the standard derivative. *)
Theorem surrogate_factor_not_alpha_sq : ~ (forall beta lr logZ (traj : R -> list step) x dq l,
  0 < beta -> (forall t, sum_rw (traj t) = lr) ->
  (forall t, sum_lp (traj t) = sum_lp (traj x)) ->
  derivable_pt_lim (fun t => sum_lq (traj t)) x dq ->
  derivable_pt_lim (fun t => half_sq (rtb_residual beta logZ lr (traj t))) x l ->
  derivable_pt_lim
    (fun t => - consistency 1 0 (/ beta) (/ beta * logZ) 0 (traj x) * sum_lq (traj t))
    x ((/ beta) ^ 2 * l)).
Proof.
  intros H.
  set (traj := fun t : R => [mkStep t 0 0]).
  assert (Hq : derivable_pt_lim (fun t => sum_lq (traj t)) 1 1).
  { eapply deriv_eq; [apply derivable_pt_lim_id | intros; unfold traj, id; simpl; ring
                     | reflexivity]. }
  assert (Hl : derivable_pt_lim (fun t => half_sq (rtb_residual 2 0 0 (traj t))) 1 1).
  { eapply deriv_eq; [apply (derivable_half_sq_affine 1 0 1)
                     | intros; unfold traj, rtb_residual, rtb_residual_w; simpl; f_equal; ring
                     | ring]. }
  pose proof (H 2 0 0 traj 1 1 1 ltac:(lra) ltac:(intros; unfold traj; simpl; ring)
                ltac:(reflexivity) Hq Hl) as Hbad.
  (* The true derivative is alpha * 1 = 1/2; the claimed one is 1/4. *)
  assert (Hgood : derivable_pt_lim
    (fun t => - consistency 1 0 (/ 2) (/ 2 * 0) 0 (traj 1) * sum_lq (traj t)) 1 (/ 2)).
  { eapply deriv_eq; [apply (derivable_pt_lim_scal id (/ 2) 1 1 (derivable_pt_lim_id 1))
                     | intros; unfold mult_real_fct, consistency, traj, rl_term, id; simpl; field
                     | ring]. }
  pose proof (uniqueness_limite _ _ _ _ Hbad Hgood). lra.
Qed.

Theorem shared_factor_not_alpha : ~ (forall beta lr (traj : R -> list step) logZ x l,
  0 < beta -> (forall t, sum_rw (traj t) = lr) ->
  derivable_pt_lim (fun t => half_sq (rtb_residual beta (logZ t) lr (traj t))) x l ->
  derivable_pt_lim (fun t => half_sq (consistency 1 0 (/ beta) (/ beta * logZ t) 0 (traj t)))
    x (/ beta * l)).
Proof.
  intros H.
  assert (Hl : derivable_pt_lim (fun t => half_sq (rtb_residual 2 (id t) 0 nil)) 1 1).
  { eapply deriv_eq; [apply (derivable_half_sq_affine 1 0 1)
                     | intros; unfold rtb_residual, rtb_residual_w, id; simpl; f_equal; ring
                     | ring]. }
  pose proof (H 2 0 (fun _ => nil) id 1 1 ltac:(lra) ltac:(reflexivity) Hl) as Hbad.
  pose proof (C3_shared_std 2 0 ltac:(lra) (fun _ => nil) id 1 1 ltac:(reflexivity) Hl) as Hgood.
  pose proof (uniqueness_limite _ _ _ _ Hbad Hgood). lra.
Qed.
