"""Built-in synthetic KuaiRand: a documented generative model behind the official file format.

>>> from noetik.data.synthetic import SynthConfig, synthesize, SyntheticWorld
>>> config = SynthConfig.for_release("pure", users=500, videos=1_000, seed=0)
>>> paths = synthesize(out_dir, config)                 # every official file + noetik_synth.json
>>> world = SyntheticWorld.from_config(load_config(out_dir))
>>> world.click_probability(user_ids, video_ids, hour, tab)  # the TRUE click probability

The model (latent topics and tastes, popularity, sessions, tabs, biased logging policy, uniform
random exposure, play time and the 12 feedback signals) is written out in ``docs/synthetic.md``.
"""

from __future__ import annotations

from noetik.data.synthetic.config import ModelParams, SynthConfig
from noetik.data.synthetic.world import SyntheticWorld
from noetik.data.synthetic.writer import CONFIG_FILE, load_config, synthesize

__all__ = [
    "CONFIG_FILE",
    "ModelParams",
    "SynthConfig",
    "SyntheticWorld",
    "load_config",
    "synthesize",
]
