(** * Trajectories, Trust-PCL consistency, RTB and relative SubTB residuals: C1, C2, C4.

    A trajectory (or a window) is a list of steps; each step carries real numbers
    [lq] = log q(s_{t+1}|s_t), [lp] = log p(s_{t+1}|s_t) and [rw] = r_t, the reward paid on
    that step (DESIGN §2: [r_t = 0] except [r_{T-1} = log r(x)]).  Nothing here assumes the
    numbers are logarithms of anything: the identities hold for all reals. *)
Require Import Reals Lra List.
Import ListNotations.
Open Scope R_scope.

Record step := mkStep { lq : R; lp : R; rw : R }.

Fixpoint sum_lq (t : list step) : R :=
  match t with nil => 0 | s :: t' => lq s + sum_lq t' end.
Fixpoint sum_lp (t : list step) : R :=
  match t with nil => 0 | s :: t' => lp s + sum_lp t' end.
Fixpoint sum_rw (t : list step) : R :=
  match t with nil => 0 | s :: t' => rw s + sum_rw t' end.

(** The reward placement of DESIGN §2: nothing is paid before the last step, [lr] on it. *)
Definition pays_at_end (lr : R) (t : list step) : Prop :=
  exists body last, t = body ++ [last] /\ Forall (fun s => rw s = 0) body /\ rw last = lr.

(** A window that does not reach a terminal pays nothing. *)
Definition pays_nothing (t : list step) : Prop := Forall (fun s => rw s = 0) t.

Lemma sum_rw_app : forall a b, sum_rw (a ++ b) = sum_rw a + sum_rw b.
Proof. induction a as [|s a IH]; intros b; simpl; [ring | rewrite IH; ring]. Qed.

Lemma pays_nothing_sum : forall t, pays_nothing t -> sum_rw t = 0.
Proof.
  induction t as [|s t IH]; intros H; simpl; [reflexivity|].
  inversion H; subst. rewrite IH by assumption. lra.
Qed.

Lemma pays_at_end_sum : forall lr t, pays_at_end lr t -> sum_rw t = lr.
Proof.
  intros lr t [body [last [-> [Hb Hl]]]].
  rewrite sum_rw_app, (pays_nothing_sum body Hb). simpl. lra.
Qed.

(** ** Trust-PCL (DESIGN §2), in full generality: discount [gamma], entropy weight [tauH],
    relative-entropy weight [lam]. *)
Definition rl_term (tauH lam : R) (s : step) : R :=
  rw s - (tauH + lam) * lq s + lam * lp s.

(** [disc_sum gamma [x_i; ...; x_{j-1}] = Σ_t gamma^(t-i) x_t]. *)
Fixpoint disc_sum (gamma : R) (xs : list R) : R :=
  match xs with nil => 0 | x :: t => x + gamma * disc_sum gamma t end.

(** [C_{i:j} = -V(s_i) + gamma^(j-i) V(s_j) + Σ_t gamma^(t-i) RL_t]. *)
Definition consistency (gamma tauH lam v_start v_end : R) (w : list step) : R :=
  - v_start + gamma ^ length w * v_end + disc_sum gamma (map (rl_term tauH lam) w).

(** RTB residual with the weights written out: [w_ratio = 1, w_reward = beta] is RTB
    ([delta = log Z + Σ log q - Σ log p - beta log r]); other weights are the
    [beta-on-ratio] variant. *)
Definition rtb_residual_w (w_ratio w_reward logZ lr : R) (t : list step) : R :=
  logZ + w_ratio * (sum_lq t - sum_lp t) - w_reward * lr.
Definition rtb_residual (beta logZ lr : R) (t : list step) : R :=
  rtb_residual_w 1 beta logZ lr t.

(** Relative sub-trajectory balance on a window. *)
Definition subtb_residual (logF_start logF_end : R) (w : list step) : R :=
  logF_start + (sum_lq w - sum_lp w) - logF_end.

(** Squared losses. *)
Definition half_sq (x : R) : R := / 2 * x ^ 2.

(** ** The telescoping lemma: with gamma = 1, tauH = 0 the RL terms sum to the RTB sums. *)
Lemma disc_sum_one : forall lam t,
  disc_sum 1 (map (rl_term 0 lam) t) = sum_rw t - lam * sum_lq t + lam * sum_lp t.
Proof.
  intros lam t; induction t as [|s t IH]; simpl; [ring|].
  rewrite IH. unfold rl_term. ring.
Qed.

(** Term by term: each RL term is [-alpha] times the RTB step [lq - lp - beta r_t]. *)
Theorem step_identity : forall beta s, beta <> 0 ->
  rl_term 0 (/ beta) s = - / beta * (lq s - lp s - beta * rw s).
Proof. intros beta s Hb. unfold rl_term. field. assumption. Qed.

(** ** C4: every window.  [V(s) = alpha log F(s)] at both ends; at a terminal end
    [V = 0] and [log F = beta log r], paid on the window's last step. *)
Theorem window_identity_core : forall beta vi vj fi fj w, beta <> 0 ->
  vi = / beta * fi -> vj + sum_rw w = / beta * fj ->
  consistency 1 0 (/ beta) vi vj w = - / beta * subtb_residual fi fj w.
Proof.
  intros beta vi vj fi fj w Hb Hi Hj.
  unfold consistency, subtb_residual. rewrite pow1, disc_sum_one.
  replace vj with (/ beta * fj - sum_rw w) by lra. subst vi. field. assumption.
Qed.

Theorem C4_window_inner : forall beta fi fj w, 0 < beta -> pays_nothing w ->
  consistency 1 0 (/ beta) (/ beta * fi) (/ beta * fj) w
  = - / beta * subtb_residual fi fj w.
Proof.
  intros beta fi fj w Hb Hw. apply window_identity_core; try lra.
  rewrite (pays_nothing_sum w Hw). ring.
Qed.

Theorem C4_window_terminal : forall beta fi lr w, 0 < beta -> pays_at_end lr w ->
  consistency 1 0 (/ beta) (/ beta * fi) 0 w
  = - / beta * subtb_residual fi (beta * lr) w.
Proof.
  intros beta fi lr w Hb Hw. apply window_identity_core; try lra.
  rewrite (pays_at_end_sum lr w Hw). field. lra.
Qed.

(** ** C1: a complete trajectory, [V(s0) = alpha log Z], [V(x) = 0]. The hypothesis only
    needs the rewards to add up to [log r(x)] ([pays_at_end] implies it). *)
Theorem C1_residual : forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  consistency 1 0 (/ beta) (/ beta * logZ) 0 t = - / beta * rtb_residual beta logZ lr t.
Proof.
  intros beta logZ lr t Hb Ht.
  replace (rtb_residual beta logZ lr t) with (subtb_residual logZ (beta * lr) t)
    by (unfold rtb_residual, rtb_residual_w, subtb_residual; ring).
  apply window_identity_core; try lra. rewrite Ht. field. lra.
Qed.

Corollary C1_residual_placed : forall beta logZ lr t, 0 < beta -> pays_at_end lr t ->
  consistency 1 0 (/ beta) (/ beta * logZ) 0 t = - / beta * rtb_residual beta logZ lr t.
Proof. intros. apply C1_residual; auto using pays_at_end_sum. Qed.

(** ** C2: the loss identity, per trajectory and for any weighted batch. *)
Theorem C2_loss : forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  half_sq (consistency 1 0 (/ beta) (/ beta * logZ) 0 t)
  = (/ beta) ^ 2 * half_sq (rtb_residual beta logZ lr t).
Proof.
  intros beta logZ lr t Hb Ht. rewrite (C1_residual beta logZ lr t Hb Ht).
  unfold half_sq. ring.
Qed.

(** A batch: trajectories with their log-rewards, log Z and an arbitrary weight each (an
    importance weight, a sampler's frequency, 1/B): any sampler, on- or off-policy. *)
Fixpoint batch_tpcl (beta : R) (b : list (R * R * R * list step)) : R :=
  match b with
  | nil => 0
  | (wt, logZ, _, t) :: b' =>
      wt * half_sq (consistency 1 0 (/ beta) (/ beta * logZ) 0 t) + batch_tpcl beta b'
  end.
Fixpoint batch_rtb (beta : R) (b : list (R * R * R * list step)) : R :=
  match b with
  | nil => 0
  | (wt, logZ, lr, t) :: b' => wt * half_sq (rtb_residual beta logZ lr t) + batch_rtb beta b'
  end.

Theorem C2_batch : forall beta b, 0 < beta ->
  Forall (fun '(_, _, lr, t) => sum_rw t = lr) b ->
  batch_tpcl beta b = (/ beta) ^ 2 * batch_rtb beta b.
Proof.
  intros beta b Hb Hall; induction Hall as [|[[[wt logZ] lr] t] b' Hx _ IH]; simpl.
  - ring.
  - rewrite IH, (C2_loss beta logZ lr t Hb Hx). ring.
Qed.

(** ** Negative controls (C7): each wrong variant is refuted by a concrete instance. *)

(** [C^2] instead of [½ C^2]. *)
Theorem missing_half_fails : ~ (forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  (consistency 1 0 (/ beta) (/ beta * logZ) 0 t) ^ 2
  = (/ beta) ^ 2 * half_sq (rtb_residual beta logZ lr t)).
Proof.
  intros H. specialize (H 1 1 0 nil ltac:(lra) eq_refl).
  unfold consistency, rtb_residual, rtb_residual_w, half_sq in H; simpl in H.
  rewrite Rinv_1 in H. lra.
Qed.

(** [alpha] in place of [alpha^2] in the loss identity. *)
Theorem alpha_not_squared_fails : ~ (forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  half_sq (consistency 1 0 (/ beta) (/ beta * logZ) 0 t)
  = / beta * half_sq (rtb_residual beta logZ lr t)).
Proof.
  intros H. specialize (H 2 1 0 nil ltac:(lra) eq_refl).
  unfold consistency, rtb_residual, rtb_residual_w, half_sq in H; simpl in H. lra.
Qed.

(** The KL penalty's sign flipped: [r_t + lam (log q - log p)], i.e. [lam = -alpha]. *)
Theorem flipped_sign_fails : ~ (forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  consistency 1 0 (- / beta) (/ beta * logZ) 0 t = - / beta * rtb_residual beta logZ lr t).
Proof.
  intros H. specialize (H 1 0 0 [mkStep 1 0 0] ltac:(lra) ltac:(simpl; lra)).
  unfold consistency, rtb_residual, rtb_residual_w, rl_term in H; simpl in H.
  rewrite Rinv_1 in H. lra.
Qed.

(** [beta] on the log-ratio instead of the reward. *)
Theorem beta_on_ratio_fails : ~ (forall beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  consistency 1 0 (/ beta) (/ beta * logZ) 0 t
  = - / beta * rtb_residual_w beta 1 logZ lr t).
Proof.
  intros H. specialize (H 2 0 0 [mkStep 1 0 0] ltac:(lra) ltac:(simpl; lra)).
  unfold consistency, rtb_residual_w, rl_term in H; simpl in H. lra.
Qed.

(** Outside the regime: a discount [gamma <> 1] breaks C1. *)
Theorem discount_fails : ~ (forall gamma beta logZ lr t, 0 < beta -> sum_rw t = lr ->
  consistency gamma 0 (/ beta) (/ beta * logZ) 0 t = - / beta * rtb_residual beta logZ lr t).
Proof.
  intros H. specialize (H 0 1 0 0 [mkStep 0 0 0; mkStep 1 0 0] ltac:(lra) ltac:(simpl; lra)).
  unfold consistency, rtb_residual, rtb_residual_w, rl_term in H; simpl in H.
  rewrite Rinv_1 in H. lra.
Qed.
