"""The response model's ensemble and the env's ensemble / pessimism options (MOPO)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import noetik.envs  # noqa: F401
from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError
from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model, load_simulator
from noetik.simulators.kuairand.ensemble import EnsembleConfig, add_members, member_rows
from noetik.simulators.kuairand.examples import HEADS
from noetik.simulators.kuairand.leave import main_tags, repeat_share
from noetik.simulators.kuairand.model import FittedSimulator
from noetik.simulators.kuairand.store import MEMBERS_FILE
from noetik.simulators.kuairand.world import load_world
from noetik.utils.tensor_files import load_tensors

ENV_ID = "noetik/KuaiRand-v0"
SRC = Path(__file__).resolve().parents[1] / "src"
CONFIG = ResponseModelConfig(hidden=32, epochs=1, fit_uncorrected=False, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny synthetic dataset and its cache folder."""
    root = tmp_path_factory.mktemp("ens")
    synthesize(root / "data", SynthConfig.for_release("pure", users=60, videos=300, seed=3))
    return root / "data", root / "cache"


def _fit(data: tuple[Path, Path], members: int | None = 3, seed: int = 0) -> FittedSimulator:
    ds = load_kuairand(data[0], cache_dir=data[1])
    ens = EnsembleConfig(members=members, seed=seed) if members else None
    return fit_response_model(ds, CONFIG, device=torch.device("cpu"), ensemble=ens)


@pytest.fixture(scope="module")
def ens_sim(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A simulator with 3 members, saved."""
    out = tmp_path_factory.mktemp("ens_sim") / "sim"
    _fit(data).save(out)
    return str(out)


def _inputs(sim: FittedSimulator, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    obs = torch.rand((n, 128), generator=gen)
    item = torch.randint(0, len(sim.vocab), (n,), generator=gen)
    return obs, item


def test_config_is_validated() -> None:
    for bad in ({"members": 1}, {"members": 2.0}, {"seed": -1}, {"bootstrap": 1}):
        with pytest.raises(ConfigError, match="ensemble"):
            EnsembleConfig(**bad)  # type: ignore[arg-type]
    rows = member_rows(EnsembleConfig(), 0, 1000)
    assert rows is not None and rows.dtype == np.int64 and len(np.unique(rows)) < 1000
    assert member_rows(EnsembleConfig(bootstrap=False), 0, 10) is None


def test_members_are_seeded_and_differ(data: tuple[Path, Path], ens_sim: str) -> None:
    sim = load_simulator(ens_sim, "cpu")
    again = _fit(data)
    other = _fit(data, seed=1)
    obs, item = _inputs(sim)
    probs = sim.predict_members_torch(obs, item)
    assert probs.shape == (3, 64, 9)
    torch.testing.assert_close(probs, again.predict_members_torch(obs, item), rtol=0, atol=0)
    assert not torch.equal(probs, other.predict_members_torch(obs, item))
    for a in range(3):  # every pair of members differs
        for b in range(a + 1, 3):
            assert (probs[a] - probs[b]).abs().max() > 1e-4
    # the base model is the one fitted without an ensemble (members do not shift its seeds)
    plain = _fit(data, members=None)
    torch.testing.assert_close(sim.predict_torch(obs, item), plain.predict_torch(obs, item))


def test_round_trip_and_old_folders(ens_sim: str, tmp_path: Path) -> None:
    sim = load_simulator(ens_sim, "cpu")
    obs, item = _inputs(sim)
    copy = tmp_path / "copy"
    sim.save(copy)
    back = load_simulator(copy, "cpu")
    assert len(back.members) == 3 and back.meta["ensemble"]["config"]["members"] == 3
    assert all(net.item_features is back.model.item_features for net in back.members)
    stored = load_tensors(copy / MEMBERS_FILE)
    assert "member0.obs_mean" in stored and not any("item_features" in k for k in stored)
    assert torch.equal(back.predict_members_torch(obs, item), sim.predict_members_torch(obs, item))
    (copy / MEMBERS_FILE).unlink()  # a folder written before ensembles existed
    old = load_simulator(copy, "cpu")
    assert old.members == ()
    assert torch.equal(old.predict_torch(obs, item), sim.predict_torch(obs, item))
    with pytest.raises(ConfigError, match="no ensemble members"):
        old.predict_members_torch(obs, item)


def test_damaged_or_mismatched_members_file(ens_sim: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ens_sim, copy)
    path = copy / MEMBERS_FILE
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ConfigError, match=MEMBERS_FILE) as err:
        load_simulator(copy, "cpu")
    assert "\n" not in str(err.value)
    path.write_bytes(good)
    payload = json.loads((copy / "simulator.json").read_text())
    payload["meta"]["ensemble"]["config"]["members"] = 4
    (copy / "simulator.json").write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match=f"{MEMBERS_FILE}.*describes 4"):
        load_simulator(copy, "cpu")
    path.write_bytes(b"damaged")  # `sim ensemble` replaces a damaged file
    add_members(copy, EnsembleConfig(members=2), device=torch.device("cpu"))
    assert len(load_simulator(copy, "cpu").members) == 2


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sim_ensemble_cli_adds_members_without_refitting(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "sim"
    _fit(data, members=None).save(folder)
    before = {name: _digest(folder / name) for name in ("model.safetensors", "tables.safetensors")}
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    run = "import sys; from noetik.cli.main import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", run, "sim", "ensemble", str(folder), "--members", "3"]
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    out = subprocess.run(cmd, check=False, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "saved 3 ensemble members" in out.stdout
    after = {name: _digest(folder / name) for name in before}
    assert after == before
    sim = load_simulator(folder, "cpu")
    fitted_with = _fit(data)  # the same members as fitting them with the base model
    obs, item = _inputs(sim)
    assert torch.equal(
        sim.predict_members_torch(obs, item), fitted_with.predict_members_torch(obs, item)
    )
    bad_cmd = [*cmd[:-1], "1"]
    bad = subprocess.run(
        bad_cmd, check=False, cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--members" in bad.stderr


def test_add_members_replaces_an_ensemble(ens_sim: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ens_sim, copy)
    sim = add_members(copy, EnsembleConfig(members=2, seed=5), device=torch.device("cpu"))
    assert all(net.item_features is sim.model.item_features for net in sim.members)
    back = load_simulator(copy, "cpu")
    assert len(back.members) == 2 and back.meta["ensemble"]["config"]["seed"] == 5
    obs, item = _inputs(back)
    assert torch.equal(back.predict_members_torch(obs, item), sim.predict_members_torch(obs, item))


def _make(sim_dir: str, **options: object) -> gym.Env:
    return gym.make(ENV_ID, sim_dir=sim_dir, device="cpu", **options)


def test_check_env_with_ensemble_options(ens_sim: str) -> None:
    for options in ({"ensemble": "mean"}, {"ensemble": "sample"}, {"pessimism": 0.5}):
        check_env(_make(ens_sim, **options).unwrapped, skip_render_check=True)


def test_options_are_validated(ens_sim: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ensemble must be"):
        _make(ens_sim, ensemble="median")
    with pytest.raises(ConfigError, match="pessimism"):
        _make(ens_sim, pessimism=-1.0)
    plain = tmp_path / "plain"
    shutil.copytree(ens_sim, plain)
    (plain / MEMBERS_FILE).unlink()
    payload = json.loads((plain / "simulator.json").read_text())
    del payload["meta"]["ensemble"]
    (plain / "simulator.json").write_text(json.dumps(payload))
    for options in ({"ensemble": "mean"}, {"pessimism": 0.1}):
        with pytest.raises(ConfigError, match="noetik sim ensemble"):
            _make(str(plain), **options)


def _vec(sim_dir: str, n: int = 32, **options: object) -> gym.vector.VectorEnv:
    return gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", sim_dir=sim_dir, **options
    )


def _vec_rollout(
    sim_dir: str, seed: int = 0, steps: int = 25, **options: object
) -> list[tuple[np.ndarray, ...]]:
    vec = _vec(sim_dir, device="cpu", **options)
    actions = np.random.default_rng(1).integers(0, vec.single_action_space.n, (steps, 32))
    obs, info = vec.reset(seed=seed)
    out: list[tuple[np.ndarray, ...]] = [(obs, info["user_id"])]
    for batch in actions:
        obs, reward, terminated, truncated, info = vec.step(batch)
        pred = info.get("pred_is_click", np.zeros(0))  # absent when every row restarts
        out.append((obs, reward, terminated, truncated, pred, info["user_id"]))
    return out


def _equal(a: list[tuple[np.ndarray, ...]], b: list[tuple[np.ndarray, ...]]) -> bool:
    return all(
        all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
        for p, q in zip(a, b, strict=True)
    )


def test_pessimism_penalises_by_the_spread_of_the_expected_reward(ens_sim: str) -> None:
    kappa = 0.7
    vec = _vec(ens_sim, device="cpu", pessimism=kappa, leave_model="hazard")
    sim = load_simulator(ens_sim, "cpu")
    vec.reset(seed=3)
    users = vec.unwrapped._users  # type: ignore[attr-defined]
    weights = np.array([0.5 if h in ("is_click", "watch_ratio") else 0.0 for h in HEADS])
    seen_sigma = False
    for _ in range(15):
        obs_before = users.obs.copy() if users.obs_fresh.all() else None
        action = vec.action_space.sample()
        _, reward, _, _, info = vec.step(action)
        np.testing.assert_array_equal(reward, info["reward_raw"] - kappa * info["reward_sigma"])
        assert {"pred_std_is_click", "pred_std_long_view"} <= set(info)
        live = ~info["autoreset"]
        seen_sigma |= bool((info["reward_sigma"][live] > 0).all())
        if obs_before is not None and live.all():  # sigma recomputed from the members
            pool = vec.unwrapped.simulator.item_model.pool  # type: ignore[attr-defined]
            probs = sim.predict_members_torch(
                torch.from_numpy(obs_before), torch.from_numpy(pool[action])
            ).numpy()
            expected = (probs.astype(np.float64) @ weights).std(axis=0)
            np.testing.assert_allclose(info["reward_sigma"], expected, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(
                info["pred_std_is_click"], probs[:, :, 0].std(axis=0), rtol=1e-5
            )
    assert seen_sigma


def test_sample_keeps_one_member_per_episode(ens_sim: str) -> None:
    env = _make(ens_sim, ensemble="sample", episode_length=6)
    sim = load_simulator(ens_sim, "cpu")
    members_seen = set()
    for seed in range(6):
        env.reset(seed=seed)
        users = env.unwrapped._users  # type: ignore[attr-defined]
        member = int(users.member[0])
        members_seen.add(member)
        for _ in range(6):
            assert users.obs_fresh.all()
            obs = torch.from_numpy(users.obs.copy())
            action = int(env.action_space.sample())
            item = env.unwrapped.simulator.item_model.pool[[action]]  # type: ignore[attr-defined]
            _, _, terminated, _, info = env.step(action)
            assert int(users.member[0]) == member
            probs = sim.predict_members_torch(obs, torch.from_numpy(item)).numpy()
            assert info["pred_is_click"] == pytest.approx(float(probs[member, 0, 0]), abs=1e-6)
            if terminated:
                break
    assert len(members_seen) > 1


def test_mean_is_the_members_mean(ens_sim: str) -> None:
    vec = _vec(ens_sim, device="cpu", ensemble="mean")
    sim = load_simulator(ens_sim, "cpu")
    obs, _ = vec.reset(seed=0)
    action = vec.action_space.sample()
    _, _, _, _, info = vec.step(action)
    pool = vec.unwrapped.simulator.item_model.pool  # type: ignore[attr-defined]
    probs = sim.predict_members_torch(torch.from_numpy(obs), torch.from_numpy(pool[action]))
    np.testing.assert_allclose(info["pred_is_click"], probs.mean(0)[:, 0].numpy(), atol=1e-6)


def test_vector_env_is_seeded(ens_sim: str) -> None:
    for options in ({"ensemble": "sample", "pessimism": 0.5}, {"ensemble": "mean"}):
        first = _vec_rollout(ens_sim, seed=2, **options)
        assert _equal(first, _vec_rollout(ens_sim, seed=2, **options))
        assert not _equal(first, _vec_rollout(ens_sim, seed=3, **options))


def test_off_is_the_plain_env(ens_sim: str, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(ens_sim, plain)
    (plain / MEMBERS_FILE).unlink()  # the same base model without members
    base = _vec_rollout(str(plain), seed=4)
    assert _equal(base, _vec_rollout(ens_sim, seed=4))
    assert _equal(base, _vec_rollout(ens_sim, seed=4, ensemble="off", pessimism=0.0))
    # with pessimism the base model still answers: same draws, only the reward moves
    pess = _vec_rollout(ens_sim, seed=4, pessimism=0.5)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(base, pess, strict=True))
    assert not all(np.array_equal(p[1], q[1]) for p, q in zip(base[1:], pess[1:], strict=True))


def test_repeat_share_counts_the_window_sharing_the_main_tag() -> None:
    tags = np.zeros((5, 24), dtype=np.int32)  # actions 0..3, padding 4 (no tag)
    tags[0, [2, 7]] = 1  # main tag 2
    tags[1, 2] = 1  # main tag 2
    tags[2, 7] = 1  # main tag 7
    main = main_tags(tags)
    np.testing.assert_array_equal(main, [2, 2, 7, -1, -1])
    history = np.array([[0, 1, 2, 4], [4, 4, 4, 4], [3, 3, 0, 2]])
    share = repeat_share(history, np.array([1, 0, 3]), main)
    np.testing.assert_array_equal(share, [0.5, 0.0, 0.0])  # an untagged item never repeats


def test_leave_repeat_coef_raises_the_leave_log_odds(ens_sim: str) -> None:
    with pytest.raises(ConfigError, match="leave_repeat_coef"):
        _make(ens_sim, leave_repeat_coef=1.0)  # fixed-length sessions have no hazard
    with pytest.raises(ConfigError, match="leave_repeat_coef"):
        _make(ens_sim, leave_model="hazard", leave_repeat_coef=-1.0)
    options = {"leave_model": "hazard", "return_history": True, "num_envs": 64}
    base = gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", sim_dir=ens_sim, **options)
    tired = gym.make_vec(
        ENV_ID,
        vectorization_mode="vector_entry_point",
        sim_dir=ens_sim,
        leave_repeat_coef=2.0,
        **options,
    )
    _, info = base.reset(seed=1)
    tired.reset(seed=1)
    action = np.random.default_rng(0).integers(0, base.single_action_space.n, 64)
    _, _, _, _, info0 = base.step(action)
    _, _, _, _, info1 = tired.step(action)
    np.testing.assert_array_equal(info0["is_click"], info1["is_click"])  # the same draws
    tags = load_world(ens_sim, None).tables.action_tags
    main = [int(np.argmax(row)) if row.any() else -1 for row in tags]
    share = np.array(
        [
            sum(main[h] == main[i] >= 0 for h in hist) / len(hist)
            for hist, i in zip(info["history_items"], info1["item"], strict=True)
        ]
    )
    assert share.max() > 0
    logit = np.log(info1["leave_prob"] / (1 - info1["leave_prob"]))
    logit0 = np.log(info0["leave_prob"] / (1 - info0["leave_prob"]))
    np.testing.assert_allclose(logit - logit0, 2.0 * share, atol=1e-9)


def test_members_share_their_fixed_inputs_exactly(ens_sim: str) -> None:
    sim = load_simulator(ens_sim, "cpu")
    assert all(sim.members[0].shares_buffers(net) for net in sim.members)
    obs, item = _inputs(sim)
    flag = torch.ones(len(item))
    with torch.inference_mode():  # the reference: one plain forward per member
        reference = torch.stack([torch.sigmoid(net(obs, item, flag)) for net in sim.members])
    assert torch.equal(sim.predict_members_torch(obs, item), reference)
    sim.members[1].obs_mean = sim.members[1].obs_mean.clone()  # no longer shared: per member
    assert not sim.members[0].shares_buffers(sim.members[1])
    assert torch.equal(sim.predict_members_torch(obs, item), reference)
