(** * Support for the certificates written by [verify --emit-coq]: logarithms of rationals
    over a base of integers, and the general theorems in the form the certificates apply
    (every regime parameter an explicit hypothesis, so a certificate whose objective is a
    mutant leaves a false side condition that [lra]/[field] cannot prove). *)
Require Import Reals Lra ZArith List.
Require Import RTB.Trajectory RTB.Gradients.
Import ListNotations.
Open Scope R_scope.

(** [Π b^e] and [Σ e log b] over a list of (base, exponent) pairs. *)
Fixpoint fprod (l : list (R * Z)) : R :=
  match l with nil => 1 | (b, e) :: t => powerRZ b e * fprod t end.
Fixpoint lsum (l : list (R * Z)) : R :=
  match l with nil => 0 | (b, e) :: t => IZR e * ln b + lsum t end.

Lemma ln_powerRZ : forall b e, 0 < b -> ln (powerRZ b e) = IZR e * ln b.
Proof.
  intros b e Hb. destruct e as [|n|n]; simpl.
  - rewrite ln_1. ring.
  - rewrite ln_pow by assumption. rewrite INR_IPR. reflexivity.
  - rewrite ln_Rinv by (apply pow_lt; assumption).
    rewrite ln_pow by assumption. rewrite INR_IPR, IZR_NEG. unfold IZR. ring.
Qed.

Lemma fprod_pos : forall l, Forall (fun be => 0 < fst be) l -> 0 < fprod l.
Proof.
  induction l as [|[b e] l IH]; intros H; simpl; [lra|]. inversion H; subst.
  apply Rmult_lt_0_compat; [apply powerRZ_lt; assumption | apply IH; assumption].
Qed.

Lemma ln_fprod : forall l, Forall (fun be => 0 < fst be) l -> ln (fprod l) = lsum l.
Proof.
  induction l as [|[b e] l IH]; intros H; simpl; [apply ln_1|]. inversion H; subst.
  simpl in *. rewrite ln_mult; [| apply powerRZ_lt; assumption | apply fprod_pos; assumption].
  rewrite ln_powerRZ by assumption. rewrite IH by assumption. reflexivity.
Qed.

(** A logarithm over the base: [x = Π b^e] (checked by [field]) gives [ln x = Σ e ln b]. *)
Lemma ln_factor : forall x l, Forall (fun be => 0 < fst be) l -> x = fprod l -> ln x = lsum l.
Proof. intros x l H ->. apply ln_fprod; assumption. Qed.

Ltac ln_base l :=
  match goal with
  | |- ln ?x = _ =>
      rewrite (ln_factor x l);
      [ simpl; ring
      | repeat apply Forall_cons; try apply Forall_nil; simpl; lra
      | simpl; field ]
  end.

(** C1 with every regime parameter explicit. *)
Theorem C1_certificate : forall gamma tauH lam v0 w_ratio w_reward beta logZ lr t,
  0 < beta -> sum_rw t = lr -> gamma = 1 -> tauH = 0 -> lam = / beta -> v0 = / beta * logZ ->
  w_ratio = 1 -> w_reward = beta ->
  consistency gamma tauH lam v0 0 t = - / beta * rtb_residual_w w_ratio w_reward logZ lr t.
Proof.
  intros gamma tauH lam v0 w_ratio w_reward beta logZ lr t Hb Ht -> -> -> -> -> ->.
  apply C1_residual; assumption.
Qed.

(** C2: [h C^2 = k (½ δ^2)] holds with [h = ½] and [k = alpha^2]. *)
Theorem C2_certificate : forall h k beta logZ lr t,
  0 < beta -> sum_rw t = lr -> h = / 2 -> k = (/ beta) ^ 2 ->
  h * (consistency 1 0 (/ beta) (/ beta * logZ) 0 t) ^ 2
  = k * half_sq (rtb_residual beta logZ lr t).
Proof.
  intros h k beta logZ lr t Hb Ht -> ->. rewrite (C1_residual beta logZ lr t Hb Ht).
  unfold half_sq. ring.
Qed.

(** C3, shared scalar: [∂(h C^2)/∂log Z = k ∂L_RTB/∂log Z = k δ], with [h = ½], [k = alpha^2]. *)
Theorem C3_logZ_certificate : forall h k beta lr t z,
  0 < beta -> sum_rw t = lr -> h = / 2 -> k = (/ beta) ^ 2 ->
  derivable_pt_lim (fun z' => h * (consistency 1 0 (/ beta) (/ beta * z') 0 t) ^ 2) z
    (k * rtb_residual beta z lr t).
Proof.
  intros h k beta lr t z Hb Ht -> ->.
  apply (C3_shared_std beta lr Hb (fun _ => t) (fun z' => z') z).
  - intros; assumption.
  - eapply deriv_eq; [apply (derivable_half_sq_affine 1 (sum_lq t - sum_lp t - beta * lr) z)
                     | intros; unfold half_sq, rtb_residual, rtb_residual_w; ring
                     | unfold rtb_residual, rtb_residual_w; ring].
Qed.

(** C3, [V(s0)] independent: [∂(h C^2)/∂V(s0)] at [V(s0) = alpha log Z] is [a δ], [a = alpha]. *)
Theorem C3_V_certificate : forall h a beta lr t z,
  0 < beta -> sum_rw t = lr -> h = / 2 -> a = / beta ->
  derivable_pt_lim (fun v => h * (consistency 1 0 (/ beta) v 0 t) ^ 2) (/ beta * z)
    (a * rtb_residual beta z lr t).
Proof.
  intros h a beta lr t z Hb Ht -> ->.
  eapply deriv_eq.
  - apply (C3_independent_V_std beta lr Hb t z (rtb_residual beta z lr t) Ht).
    eapply deriv_eq; [apply (derivable_half_sq_affine 1 (sum_lq t - sum_lp t - beta * lr) z)
                     | intros; unfold half_sq, rtb_residual, rtb_residual_w; ring
                     | unfold rtb_residual, rtb_residual_w; ring].
  - intros; unfold half_sq; reflexivity.
  - reflexivity.
Qed.
