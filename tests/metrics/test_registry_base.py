"""The generic registry every table of the project is built on (metrics, methods, data sets, architectures,
attacks)."""

import pytest

from metrics.registry_base import Registry, UnknownNameError


class UserError(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -- {fix}")
        self.problem, self.fix = problem, fix


def test_entries_are_added_once_and_listed_by_name():
    reg: Registry[int] = Registry("colour")
    reg.add("red", 1)

    @reg.register("blue")
    def blue() -> int:
        return 2

    assert reg.get("red") == 1 and reg.get("blue") is blue
    assert list(reg) == ["blue", "red"] and len(reg) == 2 and "red" in reg and "green" not in reg
    assert reg.items() == [("blue", blue), ("red", 1)]
    with pytest.raises(ValueError, match="colour 'red' is already registered"):
        reg.add("red", 3)
    assert reg.get("red") == 1  # the first entry stays


def test_an_unknown_name_suggests_close_ones_or_lists_the_choices():
    reg: Registry[int] = Registry("colour")
    reg.add("purple", 1)
    reg.add("green", 2)
    with pytest.raises(UnknownNameError) as err:
        reg.get("gren")
    assert err.value.problem == "unknown colour 'gren'" and err.value.fix == "did you mean green?"
    with pytest.raises(UnknownNameError) as err:
        reg.get("zzz")
    assert err.value.fix == "choose one of: green, purple"


def test_an_application_passes_its_own_error_type():
    reg: Registry[int] = Registry("colour", error=UserError)
    reg.add("red", 1)
    with pytest.raises(UserError) as err:
        reg.get("rde")
    assert (err.value.problem, err.value.fix) == ("unknown colour 'rde'", "did you mean red?")
