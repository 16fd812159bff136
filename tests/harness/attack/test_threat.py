import math

import pytest

from harness.core.errors import HarnessError
from harness.core.threat import check_eps, eps_text, parse_eps, parse_threat_model


@pytest.mark.parametrize(
    ("text", "value", "canonical"),
    [("0.1", 0.1, "0.1"), ("8/255", 8 / 255, "8/255"), (" 4 / 255 ", 4 / 255, "4/255"), (0.5, 0.5, "0.5")],
)
def test_parse_eps(text, value, canonical):
    parsed, shown = parse_eps(text)
    assert math.isclose(parsed, value, rel_tol=0, abs_tol=1e-12)
    assert shown == canonical


@pytest.mark.parametrize("bad", ["8/0", "abc", "", "1/", "nan", "inf"])
def test_malformed_eps_is_one_clear_error(bad):
    with pytest.raises(HarnessError, match="malformed eps"):
        parse_eps(bad)


@pytest.mark.parametrize(("threat", "eps"), [("Linf", -1.0), ("Linf", 0.0), ("Linf", 1.5), ("L2", 29.0)])
def test_eps_out_of_range(threat, eps):
    with pytest.raises(HarnessError, match="out of range"):
        check_eps(threat, eps, input_numel=784)  # L2 diameter of [0,1]^784 is 28


def test_eps_in_range_passes():
    check_eps("Linf", 8 / 255, 784)
    check_eps("L2", 28.0, 784)


def test_eps_text_recognises_255ths():
    assert eps_text(8 / 255) == "8/255"
    assert eps_text(0.1) == "0.1"


def test_threat_model_spellings():
    assert parse_threat_model("linf") == "Linf"
    assert parse_threat_model("L2") == "L2"
    with pytest.raises(HarnessError, match="unknown threat model"):
        parse_threat_model("L1")
