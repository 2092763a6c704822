"""Units (eligibility/units.py): the shipped table agrees with pint, and clinical conversions hold.

The conversion figures are the ones in /work/shared/clinical-notes.md ("Units and conversions").
"""

from __future__ import annotations

import json
import math

import pytest

from eligibility.resources import data_file
from eligibility.units import UnitProblem, UnitTable, round_significant, significant_digits, unit_key, units
from eligibility.vocabulary import vocabulary

CREATININE = vocabulary()["creatinine"].molar_mass
BILIRUBIN = vocabulary()["total_bilirubin"].molar_mass
GLUCOSE = vocabulary()["glucose"].molar_mass


@pytest.fixture(scope="module")
def pint_table() -> dict[str, tuple[str, float]]:
    """What pint computes from rules/units.yaml right now (slow: builds a pint registry)."""
    return {key: (info.dimension, info.scale) for key, info in UnitTable.from_rules().build_table().items()}


def test_unit_table_json_is_what_pint_computes(pint_table: dict[str, tuple[str, float]]) -> None:
    shipped = json.loads(data_file("rules", "unit_table.json").read_text(encoding="utf-8"))
    assert sorted(shipped) == sorted(pint_table), "run `python -m eligibility.units` to rewrite rules/unit_table.json"
    for key, (dimension, scale) in pint_table.items():
        assert shipped[key][0] == dimension, key
        assert math.isclose(shipped[key][1], scale, rel_tol=1e-12), key


def test_the_molar_masses_are_the_clinical_notes_figures() -> None:
    assert (CREATININE, BILIRUBIN, GLUCOSE) == (113.12, 584.66, 180.16)


# --- conversions a clinician checks ----------------------------------------------------------


def test_creatinine_176_8_umol_per_l_is_2_mg_per_dl() -> None:
    exact = units().convert(176.8, "µmol/L", "mg/dL", CREATININE)
    assert exact == pytest.approx(2.0, abs=1e-4)
    assert round_significant(exact, significant_digits(176.8)) == 2.0  # what a record at 176.8 reads as


def test_creatinine_one_mg_per_dl_is_88_4_umol_per_l() -> None:
    assert units().convert(1.0, "mg/dL", "umol/L", CREATININE) == pytest.approx(88.40, abs=0.01)


def test_conversion_through_a_molar_mass_says_so() -> None:
    conversion = units().conversion("umol/L", "mg/dL", CREATININE)
    assert not isinstance(conversion, UnitProblem)
    assert conversion.molar_mass == CREATININE
    assert units().conversion("g/L", "mg/dL").molar_mass is None  # type: ignore[union-attr]


def test_bilirubin_17_1_umol_per_l_is_1_mg_per_dl() -> None:
    exact = units().convert(17.1, "µmol/L", "mg/dL", BILIRUBIN)
    assert exact == pytest.approx(1.0, abs=1e-3)
    assert round_significant(exact, significant_digits(17.1)) == 1.0


def test_glucose_1_mmol_per_l_is_18_016_mg_per_dl() -> None:
    assert units().convert(1.0, "mmol/L", "mg/dL", GLUCOSE) == pytest.approx(18.016, rel=1e-9)
    assert units().convert(126.0, "mg/dL", "mmol/L", GLUCOSE) == pytest.approx(6.99, abs=0.01)


def test_a_mass_to_molar_conversion_needs_a_molar_mass() -> None:
    assert isinstance(units().convert(1.0, "mg/dL", "mmol/L"), UnitProblem)


@pytest.mark.parametrize(
    ("value", "unit"),
    [(100_000, "/mm3"), (100_000, "/mm^3"), (100_000, "cells/µL"), (100, "10^3/µL"), (100, "x10^3/uL"),
     (100, "K/uL"), (100, "x10^9/L"), (100, "10*9/L"), (100, "×10^9/L"), (100, "Gi/L")],
)
def test_cell_counts_are_one_quantity(value: float, unit: str) -> None:
    assert units().convert(value, unit, "10^9/L") == pytest.approx(100.0, rel=1e-12)


def test_pounds_to_kilograms() -> None:
    assert units().convert(1.0, "lb", "kg") == pytest.approx(0.45359237, rel=1e-12)
    assert units().convert(220.0, "lbs", "kg") == pytest.approx(99.79032, rel=1e-6)


def test_inches_to_centimetres() -> None:
    assert units().convert(1.0, "in", "cm") == pytest.approx(2.54, rel=1e-12)


def test_haemoglobin_g_per_l_to_g_per_dl() -> None:
    assert units().convert(90.0, "g/L", "g/dL") == pytest.approx(9.0, rel=1e-12)


# --- what must NOT convert --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        ("mmol/mol", "%", "HbA1c IFCC -> NGSP is a linear map, not a unit conversion"),
        ("%", "% predicted", "a bare percent is not percent of predicted"),
        ("L", "% predicted", "litres of FVC need the predicted value"),
        ("mL", "% predicted", "volume is not percent predicted"),
        ("mL/min", "mL/min/1.73m2", "creatinine clearance is not body-surface normalised eGFR"),
        ("mL/min/1.73m^2", "mL/min", "nor the other way round"),
        ("mg/dL", "U/L", "mass concentration is not enzyme activity"),
        ("point", "% predicted", "a score is not a percentage"),
        ("x ULN", "U/L", "a multiple of the upper limit needs the record's range"),
    ],
)
def test_not_convertible(source: str, target: str, why: str) -> None:
    problem = units().convert(1.0, source, target)
    assert isinstance(problem, UnitProblem), why
    assert source in problem and target in problem


def test_unknown_unit_is_a_problem_not_an_error() -> None:
    problem = units().convert(2.0, "mg/dLL", "mg/dL")
    assert isinstance(problem, UnitProblem)
    assert "mg/dLL" in problem
    assert units().info("mg/dLL") is None
    assert not units().is_known("mg/dLL")


def test_missing_unit_is_a_problem_naming_the_expected_unit() -> None:
    problem = units().convert(2.0, None, "mg/dL")
    assert isinstance(problem, UnitProblem) and "mg/dL" in problem


def test_a_canonical_unit_outside_the_table_is_a_packaging_error() -> None:
    with pytest.raises(ValueError, match="not in rules/units.yaml"):
        units().convert(1.0, "mg/dL", "mg/dLL")


@pytest.mark.parametrize("written", ["µmol/L", "μmol/L", "umol/L", "UMOL/L", "umol / L"])
def test_unit_spellings_share_one_key(written: str) -> None:
    assert unit_key(written) == "umol/l"


def test_mL_per_min_per_1_73_m2_spellings_agree() -> None:
    infos = {units().info(spelling) for spelling in ("mL/min/1.73m2", "mL/min/1.73 m²", "mL/min/1.73m^2")}
    assert len(infos) == 1 and None not in infos
    assert units().info("mL/min") not in infos


# --- significant digits: a conversion cannot add precision -------------------------------------


@pytest.mark.parametrize(("value", "digits"), [(176.8, 4), (1.1, 2), (0.05, 1), (176.79, 5), (88.42, 4), (2.0, 1), (100.0, 3)])
def test_significant_digits(value: float, digits: int) -> None:
    # a float cannot show "2.0" apart from "2", nor "100" apart from "100." (both read as written)
    assert significant_digits(value) == digits


@pytest.mark.parametrize(("value", "digits", "rounded"), [(1.9999616, 4, 2.0), (1.9999616, 1, 2.0), (0.4977, 2, 0.498), (126.112, 1, 126.0),
                                                         (0.22000000000000003, 17, 0.22), (1.5000000000000002, 16, 1.5)])
def test_round_significant_keeps_three_to_twelve_digits(value: float, digits: int, rounded: float) -> None:
    assert round_significant(value, digits) == rounded


def test_an_unlisted_ucum_power_of_ten_is_a_power_not_a_product() -> None:
    """UCUM's "10*6/mL" is 10^6 per mL; read as 10 x 6 it would be off by a factor of 16,000."""
    assert units().convert(1.0, "10*6/mL", "10^9/L") == pytest.approx(1.0)
    assert units().convert(1.0, "10*6/mL", "10^9/L") == units().convert(1.0, "10^6/mL", "10^9/L")
