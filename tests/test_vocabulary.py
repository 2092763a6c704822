"""The vocabulary (rules/vocabulary.yaml, eligibility/vocabulary.py): consistent data, name and code lookup."""

from __future__ import annotations

import collections

import pytest
import yaml

from eligibility.errors import VocabularyError
from eligibility.resources import data_file
from eligibility.units import UnitProblem, units
from eligibility.vocabulary import EVENT_KINDS, MEASURED_KINDS, Variable, Vocabulary, name_key, vocabulary

RAW = yaml.safe_load(data_file("rules", "vocabulary.yaml").read_text(encoding="utf-8"))["variables"]
VOCAB = vocabulary()
VARIABLES = list(VOCAB.variables.values())
CODE_SYSTEMS = {"loinc", "snomed", "icd10", "rxnorm"}


def test_loads_every_variable_in_the_file() -> None:
    assert len(VOCAB.variables) == len(RAW) > 100
    assert {"creatinine", "alsfrs_r", "fvc", "el_escorial_category", "als", "riluzole", "gastrostomy", "age"} <= set(VOCAB.variables)


def test_no_name_belongs_to_two_variables() -> None:
    owners: dict[str, set[str]] = collections.defaultdict(set)
    for variable_id, fields in RAW.items():
        for name in (variable_id.replace("_", " "), fields["label"], *fields.get("synonyms", ())):
            owners[name_key(name)].add(variable_id)
    shared = {name: sorted(ids) for name, ids in owners.items() if len(ids) > 1}
    assert shared == {}


def test_a_shared_name_is_refused_when_loading() -> None:
    first = Variable(id="a", label="alpha", kind="condition", synonyms=("shared name",))
    second = Variable(id="b", label="beta", kind="condition", synonyms=("Shared  Name",))
    with pytest.raises(VocabularyError, match="names both a and b"):
        Vocabulary([first, second])


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.unit is not None], ids=lambda v: v.id)
def test_every_canonical_unit_is_known(variable: Variable) -> None:
    assert units().is_known(variable.unit or "")


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.kind in MEASURED_KINDS], ids=lambda v: v.id)
def test_every_measured_variable_has_a_unit(variable: Variable) -> None:
    assert variable.unit is not None


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.unit_aliases], ids=lambda v: v.id)
def test_unit_aliases_lead_to_the_canonical_unit(variable: Variable) -> None:
    for written, meaning in variable.unit_aliases.items():
        conversion = units().conversion(meaning, variable.unit or "", variable.molar_mass)
        assert not isinstance(conversion, UnitProblem), f"{written} -> {meaning}: {conversion}"


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.codes], ids=lambda v: v.id)
def test_codes_have_a_system_and_a_code(variable: Variable) -> None:
    for code in variable.codes:
        assert code.system in CODE_SYSTEMS, code
        assert code.code.strip() == code.code and code.code, code


def test_no_code_belongs_to_two_variables() -> None:
    owners: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for variable in VARIABLES:
        for code in variable.codes:
            owners[(code.system, code.code.casefold())].add(variable.id)
    assert {code: ids for code, ids in owners.items() if len(ids) > 1} == {}


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.molar_mass is not None], ids=lambda v: v.id)
def test_a_molar_mass_names_its_source(variable: Variable) -> None:
    assert variable.molar_mass_source


@pytest.mark.parametrize("variable", [v for v in VARIABLES if v.reference_range is not None], ids=lambda v: v.id)
def test_reference_ranges_are_ranges_inside_the_plausible_bounds(variable: Variable) -> None:
    reference, plausible = variable.reference_range, variable.plausible
    assert reference is not None and reference.source
    if reference.low is not None and reference.high is not None:
        assert reference.low <= reference.high
    if plausible is not None:
        for value in (reference.low, reference.high):
            if value is not None:
                assert (plausible.low is None or plausible.low <= value) and (plausible.high is None or value <= plausible.high)


def test_category_values_are_distinct_within_a_scale() -> None:
    """A written value (spelling variants such as "lab-supported" / "lab supported" aside) means one value."""
    for variable in (v for v in VARIABLES if v.values):
        meaning: dict[str, str] = {}
        for value in variable.values:
            for name in (value.value, *value.synonyms):
                assert meaning.setdefault(name_key(name), value.value) == value.value, (variable.id, name)


def test_only_conditions_apply_to_one_sex() -> None:
    assert all(v.kind == "condition" for v in VARIABLES if v.applies_to is not None)
    assert VOCAB["pregnancy"].applies_to == "female"


def test_kinds_split_into_measured_and_events() -> None:
    assert MEASURED_KINDS.isdisjoint(EVENT_KINDS)
    assert all(not v.is_measured for v in VARIABLES if v.kind in EVENT_KINDS)


# --- lookup ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["creatinine", "serum creatinine", "SCr", "  Serum   Creatinine ", "SERUM CREATININE"])
def test_names_match_case_insensitively_through_synonyms(name: str) -> None:
    found = VOCAB.by_name(name)
    assert found is not None and found.id == "creatinine"


def test_an_unknown_name_matches_nothing() -> None:
    assert VOCAB.by_name("creatinine kinase isoenzyme zeta") is None


@pytest.mark.parametrize("system", ["loinc", "LOINC", "http://loinc.org"])
def test_codes_match_by_system_alias(system: str) -> None:
    found = VOCAB.by_code(system, "2160-0")
    assert found is not None and found.id == "creatinine"


def test_icd10_code_by_fhir_uri() -> None:
    found = VOCAB.by_code("http://hl7.org/fhir/sid/icd-10-cm", "G12.21")
    assert found is not None and found.id == "als"


@pytest.mark.parametrize(("written", "value"), [("definite", "clinically definite"), ("Clinically Probable", "clinically probable"),
                                                ("probable ALS-lab supported", "clinically probable laboratory-supported")])
def test_category_synonyms(written: str, value: str) -> None:
    assert VOCAB.category_value("el_escorial_category", written) == value


def test_fvc_reads_a_bare_percent_as_percent_predicted() -> None:
    assert VOCAB["fvc"].record_unit("%") == "% predicted"
    assert VOCAB["fvc"].record_unit("% of expected") == "% predicted"
    assert VOCAB["fvc"].record_unit("L") == "L"


def test_a_score_without_a_unit_is_in_points() -> None:
    assert VOCAB["alsfrs_r"].record_unit(None) == "point"
    assert VOCAB["creatinine"].record_unit(None) is None


@pytest.mark.parametrize(("broader", "narrower"), [("diabetes", "type_2_diabetes"), ("diabetes", "type_1_diabetes"), ("surgery", "major_surgery"),
                                                   ("surgery", "cabg"), ("anticancer_therapy", "chemotherapy"),
                                                   ("systemic_anticancer_therapy", "immune_checkpoint_inhibitor"),
                                                   ("malignancy", "lung_cancer"), ("malignancy", "brain_metastases"),
                                                   ("inflammatory_bowel_disease", "crohns_disease"), ("pregnancy", "singleton_pregnancy"),
                                                   ("surgery", "bariatric_surgery"), ("neuropathy", "diabetic_neuropathy"),
                                                   ("drug_abuse", "opioid_use_disorder"), ("antidepressant", "ssri"),
                                                   ("biologic", "rituximab"), ("infection", "hepatitis_c"),
                                                   ("psychiatric_disorder", "psychotic_disorder"), ("psychotic_disorder", "schizophrenia"),
                                                   ("transplantation", "solid_organ_transplant"),
                                                   ("transplantation", "hematopoietic_stem_cell_transplant"),
                                                   ("solid_organ_transplant", "kidney_transplant"),
                                                   ("cerebrovascular_disease", "stroke"), ("cerebrovascular_disease", "transient_ischemic_attack"),
                                                   ("stroke", "ischemic_stroke"), ("renal_failure", "end_stage_renal_disease"),
                                                   ("renal_failure", "acute_kidney_injury"), ("dementia", "alzheimers_disease"),
                                                   ("angina", "stable_angina"), ("angina", "unstable_angina"),
                                                   ("suicidality", "suicidal_ideation"), ("suicidality", "suicide_attempt"),
                                                   ("contraception", "intrauterine_device"), ("contraception", "oral_contraceptive"),
                                                   ("non_invasive_ventilation", "cpap"), ("dementia", "parkinsons_disease_dementia"),
                                                   ("parkinsons_disease", "parkinsons_disease_dementia"),
                                                   ("live_vaccine", "live_attenuated_influenza_vaccine"),
                                                   ("infection", "upper_respiratory_tract_infection")])
def test_a_narrower_concept_has_its_own_variable_under_the_broader_one(broader: str, narrower: str) -> None:
    """"Type 2 diabetes" must not be satisfied by type 1, nor "surgery" only by a major one; a record of
    the narrower one still counts for the broader."""
    assert narrower in VOCAB.narrower[broader]
    assert broader not in VOCAB.narrower[narrower]


@pytest.mark.parametrize("name", ["troponin", "vas", "nrs", "acr", "pct", "estradiol", "cortisol", "insulin-dependent diabetes",
                                  "tbi", "asd", "art", "car-t", "aed", "nursing home", "morbid obesity", "elective surgery",
                                  "planned surgery", "insulin-treated", "ecg", "electrocardiogram", "mesenchymal stem cell therapy",
                                  "asa", "5-asa", "viral upper respiratory tract infection", "etdrs letters", "cyp3a4 inhibitors",
                                  "strong cyp3a4 inhibitors", "ids-c30", "american society of anesthesiologists"])
def test_ambiguous_names_are_not_synonyms(name: str) -> None:
    """Names that mean two things in real criteria (troponin I or T, a VAS of pain or of itch; TBI is
    also total body irradiation, ASD atrial septal defect, ART assisted reproduction; a bare ASA is also
    aspirin; ETDRS letters belong to one eye; CYP3A4 inhibitors need a sourced member list), a narrower class
    (morbid obesity), a planned event (elective surgery), a qualifier of another noun ("insulin-treated
    diabetes") or a test with no finding (ECG) name no variable."""
    assert VOCAB.by_name(name) is None


def test_a_condition_that_is_a_state_now_is_current_by_default() -> None:
    """"Smokers" and "shock" are about the screening date; a record of them with an end date is past."""
    assert {VOCAB[v].timing for v in ("current_smoker", "shock", "hemodynamic_instability", "singleton_pregnancy")} == {"current"}


@pytest.mark.parametrize(("concept", "not_included"), [("psychotic_disorder", "depression"), ("psychotic_disorder", "bipolar_disorder"),
                                                       ("solid_organ_transplant", "hematopoietic_stem_cell_transplant"),
                                                       ("cell_therapy", "hematopoietic_stem_cell_transplant"),
                                                       ("stable_angina", "unstable_angina"), ("suicidal_ideation", "suicide_attempt"),
                                                       ("end_stage_renal_disease", "acute_kidney_injury"),
                                                       ("immunosuppressant", "immunocompromised")])
def test_a_concept_is_not_satisfied_by_its_sibling(concept: str, not_included: str) -> None:
    """The audit's merged concepts (psychosis = any psychiatric disorder, BMT = organ transplant, an
    attempt = ideation, ESRD = AKI) stay apart: a record of one says nothing of the other."""
    assert not_included not in VOCAB.narrower[concept]
    assert concept not in VOCAB.narrower.get(not_included, ())


@pytest.mark.parametrize(("name", "variable_id"), [("psychosis", "psychotic_disorder"), ("bone marrow transplant", "hematopoietic_stem_cell_transplant"),
                                                   ("stem cell transplantation", "hematopoietic_stem_cell_transplant"),
                                                   ("organ transplant", "solid_organ_transplant"), ("transplant", "transplantation"),
                                                   ("cerebrovascular disease", "cerebrovascular_disease"), ("esrd", "end_stage_renal_disease"),
                                                   ("acute renal failure", "acute_kidney_injury"), ("renal failure", "renal_failure"),
                                                   ("alzheimer's disease", "alzheimers_disease"), ("stable angina", "stable_angina"),
                                                   ("suicide attempt", "suicide_attempt"), ("suicide risk", "suicidality"),
                                                   ("iud", "intrauterine_device"), ("immunosuppression", "immunocompromised"),
                                                   ("cpap", "cpap"), ("bipap", "non_invasive_ventilation"),
                                                   ("type 1 dm", "type_1_diabetes"), ("type ii dm", "type_2_diabetes"),
                                                   ("ids-sr", "ids_sr30"), ("qids-sr", "qids_sr16"), ("rmdq", "roland_morris"),
                                                   ("laiv", "live_attenuated_influenza_vaccine"), ("urti", "upper_respiratory_tract_infection")])
def test_a_name_means_its_own_concept(name: str, variable_id: str) -> None:
    found = VOCAB.by_name(name)
    assert found is not None and found.id == variable_id


def test_an_acute_state_is_current_by_default() -> None:
    """"Fever", "infections", "acute renal failure" in a list of criteria are about the screening date;
    a record of one that ended before it is past. "History of ..." still reads as ever."""
    acute = ("fever", "infection", "sepsis", "acute_kidney_injury", "delirium", "anemia", "immunocompromised", "cpap")
    assert {VOCAB[v].timing for v in acute} == {"current"}
