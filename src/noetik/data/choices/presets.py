"""Mappings of the four hBayesDM example tasks (Ahn, Haines & Zhang, 2017; GPL-3.0 data).

===============  ==========================================  ===============================
preset           task                                        file (hBayesDM 1.1.1)
===============  ==========================================  ===============================
``bandit2arm``   two-armed bandit, reward 1 / loss -1        ``bandit2arm_exampleData.txt``
``bandit4arm``   four-armed bandit, separate gain and loss   ``bandit4arm_exampleData.txt``
                 (Seymour et al., 2012); no trial column
``igt``          Iowa Gambling Task (Bechara et al., 1994)   ``igt_exampleData.txt``
``two-step``     two-step task (Daw et al., 2011)            ``ts_exampleData.txt``
===============  ==========================================  ===============================

>>> from noetik.data.choices import PRESETS, PRESET_FILES, read_choices
>>> episodes = read_choices("../shared/data/decision-tasks/" + PRESET_FILES["igt"], "igt")
"""

from __future__ import annotations

from types import MappingProxyType

from noetik.data.choices.mapping import ChoiceMapping
from noetik.errors import ConfigError

__all__ = ["PRESETS", "PRESET_FILES", "preset"]

_PRESETS = (
    ChoiceMapping(task="bandit2arm", trial="trial", n_options=(2,), reward="outcome"),
    ChoiceMapping(task="bandit4arm", n_options=(4,), gain="gain", loss="loss"),
    ChoiceMapping(
        task="igt", trial="trial", n_options=(4,), gain="gain", loss="loss", outcome_scale=100.0
    ),
    ChoiceMapping(
        task="two-step",
        trial="trial",
        choices=("level1_choice", "level2_choice"),
        n_options=(2, 4),
        states=(1, 2),
        reward="reward",
        option_values=("A1prob", "A2prob", "B1prob", "B2prob"),
    ),
)

#: Mapping of each preset task, by name.
PRESETS: MappingProxyType[str, ChoiceMapping] = MappingProxyType({m.task: m for m in _PRESETS})

#: File name of each preset's hBayesDM example data set.
PRESET_FILES: MappingProxyType[str, str] = MappingProxyType(
    {
        "bandit2arm": "bandit2arm_exampleData.txt",
        "bandit4arm": "bandit4arm_exampleData.txt",
        "igt": "igt_exampleData.txt",
        "two-step": "ts_exampleData.txt",
    }
)


def preset(name: str) -> ChoiceMapping:
    """The mapping of preset ``name`` (a ConfigError lists the presets for an unknown one)."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ConfigError(f"unknown task preset '{name}' (presets: {known})") from None
