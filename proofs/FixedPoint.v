(** * C5 on a finite DAG: the optimum by backward induction, [q*], and
    [KL(q ‖ q* ) = log Z* - beta J(q)] for every policy [q].

    The DAG: any type [St] of states, children [succ s] (a terminal has none), and a rank
    that strictly decreases along every edge (a topological order; hence finiteness of every
    path and acyclicity).  Complete trajectories from [s] are enumerated by [paths n s] with
    fuel [n > rank s]. *)
Require Import Reals Lra Lia List.
Require Import RTB.Trajectory.
Import ListNotations.
Open Scope R_scope.

(** ** Finite sums over lists. *)
Definition sum_over {A} (f : A -> R) (l : list A) : R :=
  fold_right (fun a acc => f a + acc) 0 l.

Lemma sum_over_app : forall A (f : A -> R) a b,
  sum_over f (a ++ b) = sum_over f a + sum_over f b.
Proof. intros A f a b; induction a as [|x a IH]; simpl; [ring | rewrite IH; ring]. Qed.

Lemma sum_over_flat_map : forall A B (f : B -> R) (h : A -> list B) l,
  sum_over f (flat_map h l) = sum_over (fun a => sum_over f (h a)) l.
Proof.
  intros A B f h l; induction l as [|x l IH]; simpl; [reflexivity|].
  rewrite sum_over_app, IH. reflexivity.
Qed.

Lemma sum_over_map : forall A B (f : B -> R) (h : A -> B) l,
  sum_over f (map h l) = sum_over (fun a => f (h a)) l.
Proof. intros A B f h l; induction l as [|x l IH]; simpl; [reflexivity | rewrite IH; reflexivity]. Qed.

Lemma sum_over_ext : forall A (f g : A -> R) l,
  (forall a, In a l -> f a = g a) -> sum_over f l = sum_over g l.
Proof.
  intros A f g l H; induction l as [|x l IH]; simpl; [reflexivity|].
  rewrite H by (left; reflexivity). rewrite IH by (intros; apply H; right; assumption).
  reflexivity.
Qed.

Lemma sum_over_lin : forall A (f g h : A -> R) c d l,
  sum_over (fun a => f a - c * g a + d * h a) l
  = sum_over f l - c * sum_over g l + d * sum_over h l.
Proof. intros A f g h c d l; induction l as [|x l IH]; simpl; [ring | rewrite IH; ring]. Qed.

Lemma sum_over_scal_l : forall A (f : A -> R) c l,
  sum_over (fun a => c * f a) l = c * sum_over f l.
Proof. intros A f c l; induction l as [|x l IH]; simpl; [ring | rewrite IH; ring]. Qed.

Lemma sum_over_scal_r : forall A (f : A -> R) c l,
  sum_over (fun a => f a * c) l = sum_over f l * c.
Proof. intros A f c l; induction l as [|x l IH]; simpl; [ring | rewrite IH; ring]. Qed.

Lemma sum_over_zero : forall A (l : list A), sum_over (fun _ => 0) l = 0.
Proof. intros A l; induction l as [|x l IH]; simpl; [reflexivity | rewrite IH; ring]. Qed.

Lemma sum_over_pos : forall A (f : A -> R) l,
  l <> nil -> (forall a, In a l -> 0 < f a) -> 0 < sum_over f l.
Proof.
  intros A f l; induction l as [|x l IH]; intros Hne H; [congruence|]. simpl.
  assert (Hx : 0 < f x) by (apply H; left; reflexivity).
  destruct l as [|y l].
  - simpl. lra.
  - assert (0 < sum_over f (y :: l)).
    { apply IH; [discriminate | intros; apply H; right; assumption]. }
    lra.
Qed.

Section Dag.
Variable St : Type.
Variable succ : St -> list St.
Variable rank : St -> nat.
Hypothesis rank_succ : forall s c, In c (succ s) -> (rank c < rank s)%nat.
Variable p : St -> St -> R.
Hypothesis p_pos : forall s c, In c (succ s) -> 0 < p s c.
(** [lr x = log r(x)] on terminals. *)
Variable lr : St -> R.
Variable beta : R.
Hypothesis beta_pos : 0 < beta.

(** [r(x)^beta], as [exp (beta log r(x))]. *)
Definition g (x : St) : R := exp (beta * lr x).

(** Complete trajectories (lists of edges) from [s]; at fuel 0 the enumeration stops. *)
Fixpoint paths (n : nat) (s : St) : list (list (St * St)) :=
  match n with
  | O => [nil]
  | Datatypes.S n' =>
      match succ s with
      | nil => [nil]
      | cs => flat_map (fun c => map (cons (s, c)) (paths n' c)) cs
      end
  end.

Fixpoint endpoint (s : St) (t : list (St * St)) : St :=
  match t with nil => s | (_, c) :: t' => endpoint c t' end.

(** A path from [s] along edges of the DAG. *)
Fixpoint valid (s : St) (t : list (St * St)) : Prop :=
  match t with nil => True | (a, b) :: t' => a = s /\ In b (succ s) /\ valid b t' end.

(** The probability of a path under a policy given per edge. *)
Fixpoint pw (pi : St -> St -> R) (t : list (St * St)) : R :=
  match t with nil => 1 | (a, b) :: t' => pi a b * pw pi t' end.

(** [F*] by backward induction (fuel as for [paths]). *)
Fixpoint flow (n : nat) (s : St) : R :=
  match n with
  | O => g s
  | Datatypes.S n' =>
      match succ s with
      | nil => g s
      | cs => sum_over (fun c => p s c * flow n' c) cs
      end
  end.

Lemma paths_S : forall n s, paths (Datatypes.S n) s =
  match succ s with nil => [nil] | cs => flat_map (fun c => map (cons (s, c)) (paths n c)) cs end.
Proof. reflexivity. Qed.

Lemma flow_S : forall n s, flow (Datatypes.S n) s =
  match succ s with nil => g s | cs => sum_over (fun c => p s c * flow n c) cs end.
Proof. reflexivity. Qed.

Lemma paths_valid : forall n s t, In t (paths n s) -> valid s t.
Proof.
  induction n as [|n IH]; intros s t Ht.
  - destruct Ht as [<- | []]. exact I.
  - rewrite paths_S in Ht. destruct (succ s) as [|c cs] eqn:E.
    + destruct Ht as [<- | []]. exact I.
    + apply in_flat_map in Ht. destruct Ht as [c' [Hc Ht]].
      apply in_map_iff in Ht. destruct Ht as [t' [<- Ht']].
      simpl. rewrite E. split; [reflexivity | split; [assumption | apply (IH c' t' Ht')]].
Qed.

(** With enough fuel every enumerated path ends at a terminal. *)
Lemma paths_complete : forall n s t, (rank s < n)%nat -> In t (paths n s) ->
  succ (endpoint s t) = nil.
Proof.
  induction n as [|n IH]; intros s t Hn Ht; [lia|]. rewrite paths_S in Ht.
  destruct (succ s) as [|c cs] eqn:E.
  - destruct Ht as [<- | []]. simpl. assumption.
  - apply in_flat_map in Ht. destruct Ht as [c' [Hc Ht]].
    apply in_map_iff in Ht. destruct Ht as [t' [<- Ht']].
    simpl. apply IH; [| assumption].
    assert (rank c' < rank s)%nat by (apply rank_succ; rewrite E; assumption). lia.
Qed.

(** And every complete path is enumerated. *)
Lemma paths_cover : forall n s t, (rank s < n)%nat -> valid s t ->
  succ (endpoint s t) = nil -> In t (paths n s).
Proof.
  induction n as [|n IH]; intros s t Hn Hv He; [lia|]. rewrite paths_S.
  destruct t as [|[a b] t'].
  - simpl in He. rewrite He. left. reflexivity.
  - destruct Hv as [-> [Hb Hv]]. simpl in He.
    destruct (succ s) as [|c cs] eqn:E; [contradiction|].
    apply in_flat_map. exists b. split; [assumption|].
    apply in_map. apply IH; try assumption.
    assert (rank b < rank s)%nat by (apply rank_succ; rewrite E; assumption). lia.
Qed.

(** Any policy that sums to one at every non-terminal state gives total mass one. *)
Lemma mass_one : forall (pi : St -> St -> R),
  (forall s, succ s <> nil -> sum_over (pi s) (succ s) = 1) ->
  forall n s, sum_over (pw pi) (paths n s) = 1.
Proof.
  intros pi Hpi n; induction n as [|n IH]; intros s; [simpl; ring|].
  rewrite paths_S. destruct (succ s) as [|c cs] eqn:E; [simpl; ring|].
  rewrite <- (Hpi s) by congruence. rewrite E, sum_over_flat_map. apply sum_over_ext. intros c' _.
  rewrite sum_over_map. simpl. rewrite sum_over_scal_l, IH. ring.
Qed.

Lemma pw_pos : forall (pi : St -> St -> R), (forall s c, In c (succ s) -> 0 < pi s c) ->
  forall t s, valid s t -> 0 < pw pi t.
Proof.
  intros pi Hpi t; induction t as [|[a b] t IH]; intros s Hv; simpl; [lra|].
  destruct Hv as [-> [Hb Hv]]. apply Rmult_lt_0_compat; [apply Hpi; assumption | apply (IH b Hv)].
Qed.

Lemma ln_pw : forall (pi : St -> St -> R), (forall s c, In c (succ s) -> 0 < pi s c) ->
  forall t s, valid s t -> ln (pw pi t) = sum_over (fun e => ln (pi (fst e) (snd e))) t.
Proof.
  intros pi Hpi t; induction t as [|[a b] t IH]; intros s Hv; simpl; [apply ln_1|].
  destruct Hv as [-> [Hb Hv]]. rewrite ln_mult, (IH b Hv); [reflexivity | apply Hpi; assumption |].
  apply (pw_pos pi Hpi t b Hv).
Qed.

Lemma g_pos : forall x, 0 < g x.
Proof. intros; apply exp_pos. Qed.

Lemma flow_pos : forall n s, 0 < flow n s.
Proof.
  induction n as [|n IH]; intros s; [apply g_pos|].
  rewrite flow_S. destruct (succ s) as [|c cs] eqn:E; [apply g_pos|].
  apply sum_over_pos; [discriminate|]. intros c' Hc.
  apply Rmult_lt_0_compat; [apply p_pos; rewrite E; assumption | apply IH].
Qed.

Lemma flow_fuel : forall n m s, (rank s < n)%nat -> (rank s < m)%nat -> flow n s = flow m s.
Proof.
  induction n as [|n IH]; intros m s Hn Hm; [lia|]. destruct m as [|m]; [lia|].
  rewrite !flow_S.
  destruct (succ s) as [|c cs] eqn:E; [reflexivity|].
  apply sum_over_ext. intros c' Hc. f_equal.
  assert (rank c' < rank s)%nat by (apply rank_succ; rewrite E; assumption).
  apply IH; lia.
Qed.

(** [F*(s) = Σ_τ p(τ) r(x_τ)^beta] over the complete trajectories from [s]. *)
Lemma flow_paths : forall n s,
  flow n s = sum_over (fun t => pw p t * g (endpoint s t)) (paths n s).
Proof.
  induction n as [|n IH]; intros s; [simpl; ring|].
  rewrite flow_S, paths_S. destruct (succ s) as [|c cs] eqn:E; [simpl; ring|].
  rewrite sum_over_flat_map. apply sum_over_ext. intros c' _.
  rewrite sum_over_map, IH, <- sum_over_scal_l. apply sum_over_ext. intros t _. simpl. ring.
Qed.

(** ** The optimum, with one global fuel bound [N] above every rank. *)
Variable N : nat.
Hypothesis N_bound : forall s, (rank s < N)%nat.
Variable s0 : St.

Definition F (s : St) : R := flow N s.
Definition log_Z := ln (F s0).
Definition qstar (s c : St) : R := p s c * F c / F s.

Lemma F_pos : forall s, 0 < F s.
Proof. intros; apply flow_pos. Qed.

Theorem F_terminal : forall x, succ x = nil -> F x = g x.
Proof.
  intros x Hx. unfold F. pose proof (N_bound x). destruct N as [|n]; [lia|].
  rewrite flow_S, Hx. reflexivity.
Qed.

Theorem F_backward : forall s, succ s <> nil ->
  F s = sum_over (fun c => p s c * F c) (succ s).
Proof.
  intros s Hs. unfold F. pose proof (N_bound s) as Hn. destruct N as [|n] eqn:EN; [lia|].
  rewrite flow_S. destruct (succ s) as [|c cs] eqn:E; [congruence|].
  apply sum_over_ext. intros c' Hc. f_equal. rewrite <- EN.
  assert (rank c' < rank s)%nat by (apply rank_succ; rewrite E; assumption).
  apply flow_fuel; [lia | rewrite EN; apply N_bound].
Qed.

Theorem qstar_balance : forall s c, qstar s c * F s = p s c * F c.
Proof. intros s c. unfold qstar. field. apply Rgt_not_eq, F_pos. Qed.

Theorem qstar_pos : forall s c, In c (succ s) -> 0 < qstar s c.
Proof.
  intros s c Hc. unfold qstar. apply Rdiv_lt_0_compat; [|apply F_pos].
  apply Rmult_lt_0_compat; [apply p_pos; assumption | apply F_pos].
Qed.

Theorem qstar_sum_one : forall s, succ s <> nil -> sum_over (qstar s) (succ s) = 1.
Proof.
  intros s Hs. unfold qstar.
  rewrite (sum_over_ext _ _ (fun c => p s c * F c * / F s)) by (intros; reflexivity).
  rewrite sum_over_scal_r, <- F_backward by assumption. field. apply Rgt_not_eq, F_pos.
Qed.

(** Along any path (any window), [q*] telescopes: [q*(τ) F*(s) = p(τ) F*(end)]. *)
Theorem qstar_telescope : forall t s, valid s t ->
  pw qstar t * F s = pw p t * F (endpoint s t).
Proof.
  induction t as [|[a b] t IH]; intros s Hv; simpl; [ring|].
  destruct Hv as [-> [Hb Hv]].
  replace (p s b * pw p t * F (endpoint b t)) with (p s b * (pw p t * F (endpoint b t)))
    by ring.
  rewrite <- (IH b Hv). unfold qstar. field. apply Rgt_not_eq, F_pos.
Qed.

(** C5, windows: at [q*] with [log F = log F*], every relative SubTB residual is zero. *)
Theorem C5_window_zero : forall t s, valid s t ->
  ln (F s) + sum_over (fun e => ln (qstar (fst e) (snd e))) t
  - sum_over (fun e => ln (p (fst e) (snd e))) t - ln (F (endpoint s t)) = 0.
Proof.
  intros t s Hv.
  rewrite <- (ln_pw qstar qstar_pos t s Hv), <- (ln_pw p p_pos t s Hv).
  assert (Hq := pw_pos qstar qstar_pos t s Hv). assert (Hp := pw_pos p p_pos t s Hv).
  assert (H : ln (pw qstar t * F s) = ln (pw p t * F (endpoint s t)))
    by (rewrite qstar_telescope by assumption; reflexivity).
  rewrite !ln_mult in H by (apply F_pos || assumption). lra.
Qed.

(** A path as steps at [q*]: [lq = ln q*], [lp = ln p], no reward. *)
Definition steps_at_qstar (t : list (St * St)) : list step :=
  map (fun e => mkStep (ln (qstar (fst e) (snd e))) (ln (p (fst e) (snd e))) 0) t.

Lemma steps_at_qstar_sums : forall t,
  sum_lq (steps_at_qstar t) = sum_over (fun e => ln (qstar (fst e) (snd e))) t /\
  sum_lp (steps_at_qstar t) = sum_over (fun e => ln (p (fst e) (snd e))) t /\
  pays_nothing (steps_at_qstar t).
Proof.
  induction t as [|e t [Hq [Hp Hr]]]; simpl.
  - repeat split; constructor.
  - rewrite Hq, Hp. repeat split. constructor; [reflexivity | exact Hr].
Qed.

(** C5, Trust-PCL: at [q*] with [V* = alpha log F*] at both ends, every window's consistency
    is zero (C4 turns it into [-alpha] times the zero SubTB residual). At a terminal end
    [alpha log F*(x) = log r(x)], the value DESIGN pays as the last step's reward instead. *)
Theorem C5_consistency_zero : forall t s, valid s t ->
  consistency 1 0 (/ beta) (/ beta * ln (F s)) (/ beta * ln (F (endpoint s t)))
    (steps_at_qstar t) = 0.
Proof.
  intros t s Hv. destruct (steps_at_qstar_sums t) as [Hq [Hp Hr]].
  rewrite (C4_window_inner beta _ _ _ beta_pos Hr).
  unfold subtb_residual. rewrite Hq, Hp.
  pose proof (C5_window_zero t s Hv) as H0.
  replace (ln (F s) + (sum_over (fun e => ln (qstar (fst e) (snd e))) t
           - sum_over (fun e => ln (p (fst e) (snd e))) t) - ln (F (endpoint s t))) with 0
    by lra.
  ring.
Qed.

Theorem V_star_terminal : forall x, succ x = nil -> / beta * ln (F x) = lr x.
Proof.
  intros x Hx. rewrite (F_terminal x Hx). unfold g. rewrite ln_exp. field. lra.
Qed.

(** The complete trajectories from the source. *)
Definition trajs := paths N s0.

(** C5, trajectories: the RTB residual at [q*], [log Z*] is zero. *)
Theorem C5_residual_zero : forall t, In t trajs ->
  log_Z + sum_over (fun e => ln (qstar (fst e) (snd e))) t
  - sum_over (fun e => ln (p (fst e) (snd e))) t - beta * lr (endpoint s0 t) = 0.
Proof.
  intros t Ht. unfold log_Z.
  assert (Hv := paths_valid N s0 t Ht).
  assert (He := paths_complete N s0 t (N_bound s0) Ht).
  pose proof (C5_window_zero t s0 Hv) as H.
  rewrite (F_terminal _ He) in H. unfold g in H. rewrite ln_exp in H. exact H.
Qed.

(** ** KL and J over the complete trajectories. *)
Definition KL (q : St -> St -> R) : R :=
  sum_over (fun t => pw q t * (ln (pw q t) - ln (pw qstar t))) trajs.

(** [J(q) = E_q[log r(x)] - alpha KL(q(τ) ‖ p(τ))]. *)
Definition J (q : St -> St -> R) : R :=
  sum_over (fun t => pw q t * lr (endpoint s0 t)) trajs
  - / beta * sum_over (fun t => pw q t * (ln (pw q t) - ln (pw p t))) trajs.

Definition policy (q : St -> St -> R) : Prop :=
  (forall s c, In c (succ s) -> 0 < q s c) /\
  (forall s, succ s <> nil -> sum_over (q s) (succ s) = 1).

Theorem C5_KL : forall q, policy q -> KL q = log_Z - beta * J q.
Proof.
  intros q [Hpos Hsum]. unfold KL, J, log_Z.
  rewrite (sum_over_ext _ _
    (fun t => pw q t * (ln (pw q t) - ln (pw p t)) - beta * (pw q t * lr (endpoint s0 t))
              + ln (F s0) * pw q t)).
  - assert (Hm : sum_over (pw q) trajs = 1) by exact (mass_one q Hsum N s0).
    rewrite sum_over_lin, Hm. field. lra.
  - intros t Ht.
    assert (Hv := paths_valid N s0 t Ht).
    assert (He := paths_complete N s0 t (N_bound s0) Ht).
    assert (Hp := pw_pos p p_pos t s0 Hv).
    assert (Hq := pw_pos qstar qstar_pos t s0 Hv).
    assert (Hln : ln (pw qstar t) = ln (pw p t) + beta * lr (endpoint s0 t) - ln (F s0)).
    { assert (H : ln (pw qstar t * F s0) = ln (pw p t * F (endpoint s0 t)))
        by (rewrite qstar_telescope by assumption; reflexivity).
      rewrite (F_terminal _ He) in H. unfold g in H.
      rewrite !ln_mult, ln_exp in H by (apply F_pos || apply exp_pos || assumption). lra. }
    rewrite Hln. ring.
Qed.

Theorem qstar_policy : policy qstar.
Proof. split; [exact qstar_pos | exact qstar_sum_one]. Qed.

(** [J(q* ) = alpha log Z*]. *)
Theorem C5_J_optimum : J qstar = / beta * log_Z.
Proof.
  assert (H0 : KL qstar = 0).
  { unfold KL. rewrite (sum_over_ext _ _ (fun _ => 0)) by (intros; ring).
    apply sum_over_zero. }
  pose proof (C5_KL qstar qstar_policy) as H. rewrite H0 in H.
  apply (Rmult_eq_reg_l beta); [| lra]. field_simplify; lra.
Qed.

End Dag.
