"""The shipped definitions say exactly what DESIGN §4 says; bad definitions are refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.errors import DefinitionError
from engine.rules.loader import load_definition
from workflows import DEFINITIONS_DIR, load_file, load_registry

NON_FINAL_SG = [
    "demand_collection",
    "screening",
    "planning",
    "review",
    "implementation",
    "evaluation",
    "feedback",
]

# DESIGN §4, self_governance: action → (from, to, who, effects)
SELF_GOVERNANCE = {
    "close_collection": (["demand_collection"], "screening", ["committee"], []),
    "accept": (["screening"], "planning", ["committee"], []),
    "reject": (["screening", "review"], "rejected", ["committee"], []),
    "submit_plan": (["planning"], "review", ["committee"], ["set_budget"]),
    "return_for_revision": (["review"], "planning", ["committee"], []),
    "approve": (["review"], "implementation", ["committee"], ["reserve"]),
    "complete_implementation": (["implementation"], "evaluation", ["committee"], []),
    "rectify": (["evaluation"], "implementation", ["committee"], []),
    "evaluate": (["evaluation"], "feedback", ["committee"], []),
    "close": (["feedback"], "completed", ["committee"], ["release"]),
    "cancel": (NON_FINAL_SG, "cancelled", ["committee", "street"], ["release"]),
}


def _raw(name: str = "self_governance") -> dict[str, Any]:
    raw = yaml.safe_load((DEFINITIONS_DIR / f"{name}.v1.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def _table(name: str) -> dict[str, tuple[list[str], str, list[str], list[str]]]:
    wf = load_registry().latest(name)
    return {
        a.name: (list(a.sources), a.dest, sorted(a.roles), list(a.effects))
        for a in wf.actions.values()
    }


def test_self_governance_matches_the_design_table() -> None:
    assert _table("self_governance") == SELF_GOVERNANCE


def test_party_service_adds_street_approval_before_money_is_reserved() -> None:
    expected = dict(SELF_GOVERNANCE)
    expected["approve"] = (["review"], "street_review", ["committee"], [])
    expected["street_approve"] = (["street_review"], "implementation", ["street"], ["reserve"])
    expected["return_for_revision"] = (["review", "street_review"], "planning", ["committee"], [])
    non_final = [*NON_FINAL_SG[:4], "street_review", *NON_FINAL_SG[4:]]
    expected["cancel"] = (non_final, "cancelled", ["committee", "street"], ["release"])
    assert _table("party_service") == expected


def test_definitions_name_their_fund_and_chinese_labels() -> None:
    registry = load_registry()
    sg, ps = registry.latest("self_governance"), registry.latest("party_service")
    assert (sg.fund, ps.fund) == ("self_governance", "party_service")
    assert sg.states["review"].label == "评议"
    assert ps.actions["street_approve"].label == "街道审批"
    assert {s for s, d in sg.states.items() if d.final} == {"completed", "rejected", "cancelled"}


def test_the_required_fields_are_declared() -> None:
    sg = load_registry().latest("self_governance")
    required = {
        a.name: sorted(n for n, f in a.fields.items() if f.required) for a in sg.actions.values()
    }
    assert required["submit_plan"] == ["budget_fen", "plan"]
    assert required["approve"] == [
        "abstentions",
        "attendees",
        "council_size",
        "votes_against",
        "votes_for",
    ]
    assert required["evaluate"] == ["report", "score"]
    assert required["close"] == ["notice", "satisfied", "unsatisfied"]
    assert required["cancel"] == ["reason"]


def test_each_machine_is_built_once_and_reused() -> None:
    registry = load_registry()
    wf = registry.latest("self_governance")
    assert wf._machine is registry.get("self_governance", 1)._machine
    assert not wf._machine.models  # no project is ever bound to it
    assert not hasattr(wf._machine, "to_review")  # auto_transitions=False


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["actions"]["accept"].update({"to": "nowhere"}),
            "unknown target state 'nowhere'",
        ),
        (
            lambda d: d["actions"]["accept"].update({"from": ["limbo"]}),
            "unknown source state 'limbo'",
        ),
        (
            lambda d: d["actions"]["accept"].update({"conditions": ["moon_is_full"]}),
            "unknown condition 'moon_is_full'",
        ),
        (
            lambda d: d["actions"]["close"].update({"effects": ["print_money"]}),
            "unknown effect 'print_money'",
        ),
        (lambda d: d["actions"]["accept"].update({"who": ["mayor"]}), "unknown role 'mayor'"),
        (
            lambda d: d["actions"]["accept"]["fields"]["note"].update({"type": "float"}),
            "field 'note' needs a type",
        ),
        (
            lambda d: d["states"].update({"limbo": {"label": "悬置"}}),
            "state 'limbo' is unreachable",
        ),
        (lambda d: d.update({"fund": "slush_fund"}), "unknown fund 'slush_fund'"),
        (lambda d: d.update({"initial": "limbo"}), "initial state 'limbo'"),
        (
            lambda d: d["actions"]["submit_plan"]["fields"].pop("budget_fen"),
            "condition 'budget_within_available' needs fields ['budget_fen']",
        ),
        (
            lambda d: (
                d["states"].update({"parked": {"label": "搁置"}}),
                d["actions"].update(
                    {
                        "park": {
                            "label": "搁置",
                            "from": ["screening"],
                            "to": "parked",
                            "who": ["committee"],
                        }
                    }
                ),
                d["actions"]["cancel"].update({"from": NON_FINAL_SG}),
            ),
            "state 'parked' is not final but no action leaves it",
        ),
        (lambda d: d["actions"]["accept"].update({"colour": "red"}), "unknown key 'colour'"),
        (
            lambda d: d["actions"]["close"].update({"from": ["completed"]}),
            "source state 'completed' is final",
        ),
    ],
)
def test_a_malformed_definition_is_refused_with_a_clear_message(mutate: Any, message: str) -> None:
    raw = copy.deepcopy(_raw())
    mutate(raw)
    with pytest.raises(DefinitionError) as caught:
        load_definition(raw, source="broken.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("broken.yaml: ")


def test_every_problem_is_listed_at_once() -> None:
    raw = copy.deepcopy(_raw())
    raw["actions"]["accept"]["to"] = "nowhere"
    raw["actions"]["reject"]["conditions"] = ["nope"]
    with pytest.raises(DefinitionError) as caught:
        load_definition(raw, source="x.yaml")
    assert len(caught.value.problems) == 2


def test_a_file_must_be_named_after_its_name_and_version(tmp_path: Path) -> None:
    target = tmp_path / "self_governance.v2.yaml"
    target.write_text(
        (DEFINITIONS_DIR / "self_governance.v1.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(DefinitionError, match="must be named 'self_governance.v1.yaml'"):
        load_file(target)


def test_a_later_version_becomes_the_latest_and_the_old_one_stays(tmp_path: Path) -> None:
    raw = _raw()
    raw["version"] = 2
    raw["states"]["review"]["label"] = "居民议事会评议"
    (tmp_path / "self_governance.v1.yaml").write_text(
        yaml.safe_dump(_raw(), allow_unicode=True), encoding="utf-8"
    )
    (tmp_path / "self_governance.v2.yaml").write_text(
        yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8"
    )
    registry = load_registry(tmp_path)
    assert registry.latest("self_governance").version == 2
    assert registry.get("self_governance", 1).state_label("review") == "评议"
