#!/usr/bin/env bash
# The whole pipeline on built-in synthetic data (make demo). Each step is a plain CLI call.
set -euo pipefail
NOETIK=${NOETIK:-.venv/bin/noetik}
OUT=${OUT:-demo_out}
rm -rf "$OUT"
step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" "$SECONDS"; }

step "1. Synthesize a small KuaiRand-Pure dataset (official names and schema)"
$NOETIK data synth "$OUT/data" --release pure --users 300 --videos 1000 --seed 0

step "2. Validate and cache it as typed Parquet"
$NOETIK data prepare "$OUT/data" --cache "$OUT/cache"

step "3. Describe it"
$NOETIK data info "$OUT/data" --cache "$OUT/cache"

step "4. A few episodes (sessions) as offline-RL transitions"
$NOETIK data episodes "$OUT/data" --cache "$OUT/cache" --n 2

step "5. Fit the KuaiRand user simulator (debiased with the random-exposure log), with an ensemble of 3 members for its uncertainty"
$NOETIK sim fit "$OUT/data" --cache "$OUT/cache" --out "$OUT/sim" --holdout-log "$OUT/heldout_random.csv" \
  --members 3

step "6. Validate it on the random exposures of held-out users"
$NOETIK sim validate "$OUT/sim" --log "$OUT/heldout_random.csv"

step "7. Train agents offline on the logs (training split): IQL with the history Transformer, BC"
# Each run folder records its task (task.json: data, reward, episodes, split, simulator).
TASK=(--data "$OUT/data" --cache "$OUT/cache" --sim "$OUT/sim" --reward is_click=0.5,watch_ratio=0.5)
$NOETIK train iql "${TASK[@]}" --out "$OUT/runs/iql-transformer" --encoder transformer \
  --steps 100 --seed 0
$NOETIK train bc "${TASK[@]}" --out "$OUT/runs/bc" --steps 200 --seed 0
# The catalogue-scale path of KuaiRand-1K (content + hashed-id items, sampled softmax with the
# log-Q correction, chunked top-k; docs/scale.md), forced on this small catalogue.
$NOETIK train iql "${TASK[@]}" --out "$OUT/runs/iql-catalogue" \
  --config scripts/demo_configs/iql_catalogue.json --steps 200 --seed 0

step "8. Train PPO online in KuaiRand-v0 (the simulator fitted above)"
$NOETIK train ppo --env noetik/KuaiRand-v0 --env-option sim_dir="$OUT/sim" --num-envs 64 \
  --config scripts/demo_configs/ppo.json --out "$OUT/runs/ppo" --steps 10 --seed 0

step "9. Baselines: random and most-popular"
$NOETIK train random "${TASK[@]}" --out "$OUT/runs/random" --steps 1
$NOETIK train popular "${TASK[@]}" --out "$OUT/runs/popular" --steps 1

step "10. Recommendations of the IQL agents for two users (videos they have seen are left out)"
$NOETIK act "$OUT/runs/iql-transformer" --user 0 --user 1 --k 5
$NOETIK act "$OUT/runs/iql-catalogue" --user 0 --user 1 --k 5

step "11. Leaderboard: each run in its own task's simulator (1,000 users), off-policy estimates on the test split, random-log ranking, unbiased real-exposure rates (95% intervals)"
$NOETIK evaluate "$OUT"/runs/* --users 1000 --random-log "$OUT/heldout_random.csv" --out "$OUT"

step "12. Can the simulator be trusted? Its ranking of the policies (plain and pessimistic) against unbiased real exposure on held-out users"
$NOETIK sim trust "$OUT/sim" "$OUT"/runs/{random,popular,bc,iql-transformer,ppo} \
  --log "$OUT/heldout_random.csv" --users 200 --out "$OUT/trust"

step "13. Explain one recommendation in plain words (integrated gradients over state and history)"
$NOETIK explain "$OUT/runs/iql-transformer" --user 0
step "14. The HTML report: config, curves, leaderboard, simulator fidelity, simulator trust, explanations, faithfulness, behaviour"
$NOETIK report "$OUT/runs/iql-transformer" --sim "$OUT/sim"
step "15. People as learners: cognitive models of a two-armed bandit, held-out (new subjects, later trials)"
# hBayesDM's example data (Ahn, Haines & Zhang, 2017) when present beside the repository,
# else participants simulated from a Rescorla-Wagner learner.
BANDIT=../shared/data/decision-tasks/bandit2arm_exampleData.txt
SUBJECT=3
if [ ! -f "$BANDIT" ]; then
  BANDIT="$OUT/choices/bandit2arm_simulated.txt"
  SUBJECT=sim-003
  $NOETIK choices simulate "$BANDIT" --task bandit2arm --model rw --subjects 20 --trials 100
fi
$NOETIK choices evaluate "$BANDIT" --task bandit2arm --model rw --model wsls --restarts 2 \
  --boot 500 --out "$OUT/choices"
step "16. Why does a GRU expect subject $SUBJECT's choice on trial 38? Earlier trials, and the RW fit's view"
# 100 updates only (about 12 s on one core); docs/decisions.md explains with the default 2,000.
$NOETIK choices explain "$BANDIT" --task bandit2arm --subject "$SUBJECT" --trial 38 --updates 100
step "17. KuaiRand-27K-shaped data out of core: four part files read as one log, user shards, states on disk, IQL trained from them"
$NOETIK data synth "$OUT/data27k" --release 27k --users 12 --videos 3000 --seed 0 >/dev/null
$NOETIK data prepare "$OUT/data27k" --cache "$OUT/cache27k" --n-shards 3
$NOETIK train iql --data "$OUT/data27k" --cache "$OUT/cache27k" --out "$OUT/runs/iql-27k" \
  --steps 50 --seed 0
printf '\nDemo finished: outputs in %s/, report in %s\n' "$OUT" "$OUT/runs/iql-transformer/report.html"
