"""Report section: can the simulator lens be trusted? (``noetik sim trust``'s ``trust.json``).

The table of policies ranked by the simulator (plain and pessimistic) and by unbiased real
exposure, the run's own row highlighted, then the agreement: Kendall's τ between the rankings
and the gap between simulated and real one-step click rates (see
:mod:`noetik.evaluation.trust`).
"""

from __future__ import annotations

from pathlib import Path

from noetik.evaluation.trust import COLUMNS, agreement_label
from noetik.reports import html as h
from noetik.reports.context import ReportInputs, Unavailable, read_json

__all__ = ["resolve_trust", "trust_section"]

TRUST_HOWTO = (
    "run noetik sim trust SIM_DIR RUN_DIR... --log HELDOUT_RANDOM_LOG --out DIR beside the run "
    "folders, or pass --trust DIR to noetik report"
)


def resolve_trust(inputs: ReportInputs) -> Path:
    """``trust.json``: the one given (file or folder), else the first in the run folder, its
    parent or grandparent, or a ``trust/`` folder in one of them."""
    given = inputs.trust
    if given is not None:
        path = given / "trust.json" if given.is_dir() else given
        if not path.is_file():
            raise Unavailable(f"no trust file {path}")
        return path
    for folder in (inputs.run_dir, inputs.run_dir.parent, inputs.run_dir.parent.parent):
        for path in (folder / "trust.json", folder / "trust" / "trust.json"):
            if path.is_file():
                return path
    raise Unavailable(f"no trust.json in or beside the run folder; {TRUST_HOWTO}")


def trust_section(inputs: ReportInputs) -> str:
    """The trust table and the agreement figures, the run's row highlighted."""
    path = resolve_trust(inputs)
    result = read_json(path)
    try:
        rows = result["policies"]
        agreement = result["agreement"]
    except (KeyError, TypeError):
        raise Unavailable(f"{path} is not a trust.json of noetik sim trust") from None
    mine = [Path(r.get("run", "")).resolve() == inputs.run_dir for r in rows]
    header = ["policy", *(label for label, _ in COLUMNS), "ESS"]
    body = [
        [r["policy"], *(h.interval(r.get(key)) for _, key in COLUMNS), round(r["ess"])]
        for r in rows
    ]
    config = result.get("config", {})
    intro = (
        f"From {path}: {len(rows)} policies, each as softmax(standardised scores / "
        f"{config.get('temperature', '?')}) over the random-exposure pool; simulated returns "
        f"over {result.get('n_simulated_users', '?')} users (pessimistic: reward minus "
        f"{config.get('kappa', '?')} times the ensemble's spread); one-step rates on "
        f"{result.get('n_real_rows', '?')} random impressions of "
        f"{result.get('n_real_users', '?')} real users (real: self-normalised importance "
        "sampling with the log's uniform propensities). 95 % bootstrap intervals."
    )
    agree = [[agreement_label(k), h.interval(v)] for k, v in agreement.items()]
    return "\n".join(
        [
            h.para(intro),
            h.table(header, body, highlight=mine),
            h.table(["agreement", "value [95 % interval]"], agree),
            h.note(
                "A Kendall tau near 1 means the simulator ranks these policies as real users "
                "do; an interval reaching 0 means the ranking cannot be trusted."
            ),
        ]
    )
