"""The primitives every schema of untrusted data uses (harness/core/schema.py): names, text, numbers, nesting, JSON."""

from __future__ import annotations

import json

import pytest

from harness.core import schema


@pytest.mark.parametrize(
    "name",
    ["fmnist_l\u0456nf", "a.b", "a+b", "", "-a", "a\n", "a b", "x" * 65, "fmnist\u200b", 7, None],
    ids=repr,
)
def test_names_are_robustbenchs_model_id_alphabet(name):
    assert not schema.is_name(name)
    with pytest.raises(schema.SchemaError, match="model name"):
        schema.name(name, "model name")


def test_every_robustbench_zoo_id_and_shipped_name_is_a_name():
    from harness.core.autoattack_shim import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts

    ids = {model_id for zoo in model_dicts.values() for threat in zoo.values() for model_id in threat}
    assert len(ids) > 100 and all(schema.is_name(i) for i in ids), sorted(i for i in ids if not schema.is_name(i))
    assert schema.is_name("fmnist_trades_linf") and schema.is_name("Debenedetti2022Light_XCiT-S12")


def test_text_numbers_and_integers():
    assert schema.text("ok", "w", 5) == "ok"
    for bad, fragment in (("a\rb", "control"), ("a\u202eb", "control"), ("x" * 6, "6 characters"), (3, "text")):
        with pytest.raises(schema.SchemaError, match=fragment):
            schema.text(bad, "w", 5)
    assert schema.number(0.5, "acc", 0, 1) == 0.5
    for bad in (float("nan"), float("inf"), True, "0.5", 1.5, -1e-9):
        with pytest.raises(schema.SchemaError, match="acc"):
            schema.number(bad, "acc", 0, 1)
    assert schema.integer(3, "n", 1, 5) == 3
    for bad in (3.0, True, 0, "3"):
        with pytest.raises(schema.SchemaError, match="n"):
            schema.integer(bad, "n", 1, 5)


def test_json_refuses_deep_nesting_and_non_finite_constants_with_one_error():
    assert schema.load_json(json.dumps({"a": [[1]]})) == {"a": [[1]]}
    with pytest.raises(schema.SchemaError, match="RecursionError"):
        schema.load_json("[" * 200_000 + "]" * 200_000)
    with pytest.raises(schema.SchemaError, match="nested deeper than 12"):
        schema.load_json("[" * 20 + "]" * 20)
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(schema.SchemaError, match=f"non-finite constant {constant}"):
            schema.load_json(f'{{"robust_acc": {constant}}}')
    with pytest.raises(schema.SchemaError, match="not JSON"):
        schema.load_json(b"\xff\xfe")
    assert schema.depth([[[]]]) == 3 and schema.depth(1) == 0


def test_escaped_text_shows_every_control_and_reordering_character():
    assert schema.escape_controls("stored run x: 99.00%\r\u202e\u2028\x1b[2K") == (
        "stored run x: 99.00%\\x0d\\u202e\\u2028\\x1b[2K"
    )
    assert schema.shown("fmnist_l\u0456nf") == "'fmnist_l\\u0456nf'"
