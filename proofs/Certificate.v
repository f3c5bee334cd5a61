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

(** ** A DAG given by tables, for the C5 block of a certificate.  Row [s] of [tab] lists
    [(child, p(child|s))]; states are numbered [0 .. n-1] in a topological order ([0] the
    source), which [rows_ok] checks by computation; [rewards] lists [(x, log r(x))]. *)
Require Import RTB.FixedPoint Arith Lia Bool.

Fixpoint lookup (c : nat) (row : list (nat * R)) : R :=
  match row with nil => 0 | (k, v) :: t => if Nat.eqb k c then v else lookup c t end.
Definition tsucc (tab : list (list (nat * R))) (s : nat) : list nat := map fst (nth s tab nil).
Definition tprior (tab : list (list (nat * R))) (s c : nat) : R := lookup c (nth s tab nil).
Definition trank (tab : list (list (nat * R))) (s : nat) : nat := length tab - s.
Definition tlr (rewards : list (nat * R)) (x : nat) : R := lookup x rewards.

Fixpoint rows_ok (k : nat) (tab : list (list (nat * R))) : bool :=
  match tab with
  | nil => true
  | row :: t => forallb (fun e => Nat.ltb k (fst e)) row && rows_ok (Datatypes.S k) t
  end.

Lemma rows_ok_spec : forall tab k, rows_ok k tab = true ->
  forall s c, In c (map fst (nth s tab nil)) -> (k + s < c)%nat /\ (s < length tab)%nat.
Proof.
  induction tab as [|row t IH]; intros k H s c Hc.
  - destruct s; simpl in Hc; contradiction.
  - simpl in H. apply andb_prop in H. destruct H as [Hrow Ht]. destruct s as [|s].
    + simpl in Hc. apply in_map_iff in Hc. destruct Hc as [[c' v] [Hc' Hin]]. simpl in Hc'.
      subst c'. rewrite forallb_forall in Hrow. specialize (Hrow _ Hin). simpl in Hrow.
      apply Nat.ltb_lt in Hrow. simpl. lia.
    + simpl in Hc. destruct (IH (Datatypes.S k) Ht s c Hc). simpl. lia.
Qed.

Lemma trank_succ : forall tab, rows_ok 0 tab = true ->
  forall s c, In c (tsucc tab s) -> (trank tab c < trank tab s)%nat.
Proof. intros tab H s c Hc. destruct (rows_ok_spec tab 0 H s c Hc). unfold trank. lia. Qed.

Lemma trank_bound : forall tab s, (trank tab s < Datatypes.S (length tab))%nat.
Proof. intros. unfold trank. lia. Qed.

Lemma lookup_pos : forall row c, Forall (fun e => 0 < snd e) row ->
  In c (map fst row) -> 0 < lookup c row.
Proof.
  induction row as [|[k v] t IH]; intros c H Hc; simpl in Hc; [contradiction|].
  inversion H; subst. simpl. destruct (Nat.eqb k c) eqn:E; [assumption|].
  destruct Hc as [Hk | Hc].
  - subst k. rewrite Nat.eqb_refl in E. discriminate.
  - apply IH; assumption.
Qed.

Lemma tprior_pos : forall tab, Forall (Forall (fun e => 0 < snd e)) tab ->
  forall s c, In c (tsucc tab s) -> 0 < tprior tab s c.
Proof.
  intros tab H s c Hc. unfold tprior, tsucc in *. apply lookup_pos; [|assumption].
  clear Hc. revert s. induction H as [|row t Hr Ht IH]; intros [|s]; simpl; auto.
Qed.

Ltac pos_table :=
  repeat (apply Forall_cons; [repeat (apply Forall_cons; [simpl; lra|]); apply Forall_nil|]);
  apply Forall_nil.

Section Table.
Variable tab : list (list (nat * R)).
Hypothesis tab_ok : rows_ok 0 tab = true.
Hypothesis tab_pos : Forall (Forall (fun e => 0 < snd e)) tab.
Variable rewards : list (nat * R).
Variable beta : R.
Hypothesis beta_pos : 0 < beta.

(** [F*], [q*], KL and J of FixedPoint.v on this DAG (fuel: one more than the states). *)
Definition TF := F nat (tsucc tab) (tprior tab) (tlr rewards) beta (Datatypes.S (length tab)).
Definition Tqstar :=
  qstar nat (tsucc tab) (tprior tab) (tlr rewards) beta (Datatypes.S (length tab)).
Definition TKL := KL nat (tsucc tab) (tprior tab) (tlr rewards) beta (Datatypes.S (length tab)) 0%nat.
Definition TJ := J nat (tsucc tab) (tprior tab) (tlr rewards) beta (Datatypes.S (length tab)) 0%nat.

Lemma TF_terminal : forall x v, tsucc tab x = nil -> beta * tlr rewards x = ln v -> 0 < v ->
  TF x = v.
Proof.
  intros x v Hx Hl Hv. unfold TF.
  rewrite (F_terminal nat (tsucc tab) (trank tab) (tprior tab) (tlr rewards) beta
             (Datatypes.S (length tab)) (trank_bound tab) x Hx).
  unfold g. rewrite Hl. apply exp_ln. assumption.
Qed.

Lemma TF_backward : forall s, tsucc tab s <> nil ->
  TF s = sum_over (fun c => tprior tab s c * TF c) (tsucc tab s).
Proof.
  intros s Hs. unfold TF.
  exact (F_backward nat (tsucc tab) (trank tab) (trank_succ tab tab_ok) (tprior tab)
           (tlr rewards) beta (Datatypes.S (length tab)) (trank_bound tab) s Hs).
Qed.

Lemma Tqstar_value : forall s c, Tqstar s c = tprior tab s c * TF c / TF s.
Proof. reflexivity. Qed.

(** C5 on this DAG: [KL(q ‖ q* ) = log Z* - beta J(q)] for every policy [q], and
    [J(q* ) = alpha log Z*]. *)
Theorem T_KL : forall q, policy nat (tsucc tab) q -> TKL q = ln (TF 0%nat) - beta * TJ q.
Proof.
  intros q Hq.
  exact (C5_KL nat (tsucc tab) (trank tab) (trank_succ tab tab_ok) (tprior tab)
           (tprior_pos tab tab_pos) (tlr rewards) beta beta_pos (Datatypes.S (length tab))
           (trank_bound tab) 0%nat q Hq).
Qed.

Theorem T_J_optimum : TJ Tqstar = / beta * ln (TF 0%nat).
Proof.
  exact (C5_J_optimum nat (tsucc tab) (trank tab) (trank_succ tab tab_ok) (tprior tab)
           (tprior_pos tab tab_pos) (tlr rewards) beta beta_pos (Datatypes.S (length tab))
           (trank_bound tab) 0%nat).
Qed.
End Table.
Arguments TF : simpl never.
Arguments Tqstar : simpl never.
