"""Speed benchmark for the eligibility engine: prints figures, never asserts timings.

    .venv/bin/python benchmarks/bench.py            # full run (about a minute)
    .venv/bin/python benchmarks/bench.py --quick    # short run (about 15 s)
    .venv/bin/python benchmarks/bench.py --profile  # also print cProfile hot spots per stage

What is measured (one process, one thread; the targets are the ones in the issue):

1. criteria compiled per second: ``compile_criterion(text, kind)`` over the real criteria
   in ``../shared/corpus/trials.jsonl`` (or the seed-like texts below when the corpus is
   absent). The one-off set-up (vocabulary, unit table, LALR parser build) is timed apart
   as "grammar build" and excluded from the rate.
2. screenings per second for the seed trial NCT04745299 on generated patients, reports
   with their evidence built: (a) first screening of freshly validated patients, which
   builds each patient's facts; (b) screening again patients whose facts are cached.
3. screenings per second from JSON text: ``Patient.model_validate_json`` + screen.
4. command-line cold start: ``eligibility screen`` as a subprocess (median wall time), with
   a rule file and with the seed's criteria text (which builds the grammar), next to
   Python's own start-up.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
SEED_TRIAL_TEXT = SEEDS / "001_1fa9777a2a05ca7e.txt"
RULE_FILE = ROOT / "rules" / "NCT04745299.yaml"
EXAMPLE_PATIENT = ROOT / "examples" / "needs-review.json"
AS_OF = dt.date(2026, 1, 15)

# Benchmark the checkout this script sits in, installed or not.
sys.path.insert(0, str(ROOT))

import eligibility  # noqa: E402
from eligibility import Patient, TrialScreener  # noqa: E402

TARGET_COMPILE = 5_000.0  # criteria / s
TARGET_SCREEN = 20_000.0  # patient x trial screenings / s, in-process
TARGET_COLD = 0.5  # s

# Criteria in the style of the seed trials and registry text, for when the corpus is absent.
FALLBACK_CRITERIA: list[tuple[str, str]] = [
    ("inclusion", "Age 18 to 65 years"),
    ("inclusion", "Age between 25 and 75 years, inclusive"),
    ("inclusion", "Men or women aged 18 years or older"),
    ("inclusion", "Diagnosis of sporadic or familial ALS"),
    ("inclusion", "Subjects with duration of disease of no more than 2 years from the first diagnosis date."),
    ("inclusion", "Subjects whose ALSFRS-R scores are in the range of 31~46 at the time of screening (P-V0)."),
    ("inclusion", "ALSFRS-R total score >= 30"),
    ("inclusion", "Forced vital capacity (FVC) >= 50% of predicted"),
    ("inclusion", "FVC greater than 60% predicted within 28 days"),
    ("inclusion", "Disease onset less than 3 years before screening"),
    ("inclusion", "For subjects who are under Riluzole treatment, those who have received stable dose of Riluzole for more than 28 days before screening visit."),
    ("inclusion", "Clinically definite or probable ALS according to the El Escorial criteria"),
    ("inclusion", "Life expectancy of more than 2 years"),
    ("inclusion", "Serum creatinine < 2.0 mg/dL"),
    ("inclusion", "Creatinine clearance >= 60 mL/min"),
    ("inclusion", "Platelet count >= 100 x 10^9/L"),
    ("inclusion", "Absolute neutrophil count >= 1,500/mm3"),
    ("inclusion", "Hemoglobin >= 10 g/dL"),
    ("inclusion", "Total bilirubin <= 1.5 x ULN"),
    ("inclusion", "ALT and AST <= 2.5 times the upper limit of normal"),
    ("inclusion", "Body mass index between 18 and 35 kg/m2"),
    ("inclusion", "Signed informed consent"),
    ("exclusion", "Subjects who received gastrotomy at the time of screening (P-V0)."),
    ("exclusion", "Subjects who have experienced epileptic seizure."),
    ("exclusion", "Subjects with severe renal disorder (serum creatinine: not less than 2.0 mg/dL)."),
    ("exclusion", "Subjects with severe hepatic disorder (ALT, AST, or bilirubin: over 2.0 times of the normal upper limit)."),
    ("exclusion", "Subjects who show hemorrhagic tendency at the time of screening (PT and aPTT > 1.5 x ULN)"),
    ("exclusion", "Subjects whose forced vital capacity is found to be not greater than 40%of the expected value."),
    ("exclusion", "Tracheostomy or mechanical ventilation"),
    ("exclusion", "Pregnancy or breastfeeding"),
    ("exclusion", "Women of childbearing potential not using contraception"),
    ("exclusion", "History of myocardial infarction within the past 6 months"),
    ("exclusion", "Uncontrolled hypertension (systolic blood pressure > 160 mmHg)"),
    ("exclusion", "HbA1c > 8%"),
    ("exclusion", "eGFR < 30 mL/min/1.73m2"),
    ("exclusion", "Active hepatitis B, hepatitis C or HIV infection"),
    ("exclusion", "Any malignancy in the past 5 years"),
    ("exclusion", "Treatment with edaravone within 3 months"),
    ("exclusion", "Dementia or MMSE < 24"),
    ("exclusion", "Subjects who have ever received any cell therapy product for the same disease."),
]


# ---------------------------------------------------------------- results table
class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, value: str, target: str = "", status: str = "") -> None:
        self.rows.append((what, value, target, status))

    def section(self, title: str) -> None:
        self.rows.append((f"-- {title}", "", "", ""))

    def render(self) -> str:
        header = ("measure", "figure", "target", "")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        line = "  ".join("-" * w for w in widths)
        out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(), line]
        for row in self.rows:
            if row[0].startswith("-- ") and not any(row[1:]):
                out.append(row[0])
            else:
                out.append("  ".join(c.ljust(w) if i < 3 else c for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        return "\n".join(out)


def rate_status(rate: float, target: float) -> tuple[str, str]:
    return f">= {target:,.0f}/s", ("meets" if rate >= target else f"MISSES (x{target / rate:.1f} short)" if rate else "MISSES")


def time_status(seconds: float, target: float) -> tuple[str, str]:
    return f"< {target:g} s", ("meets" if seconds < target else f"MISSES (x{seconds / target:.1f} over)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def profiled(label: str, enabled: bool, run: Callable[[], Any], top: int = 18) -> Any:
    """Run ``run``; with ``--profile``, under cProfile, printing the top functions by own time."""
    if not enabled:
        return run()
    profile = cProfile.Profile()
    result = profile.runcall(run)
    for sort in ("tottime", "cumulative"):
        buffer = io.StringIO()
        stats = pstats.Stats(profile, stream=buffer).strip_dirs().sort_stats(sort)
        stats.print_stats(top)
        body = buffer.getvalue()
        start = body.find("   ncalls")
        print(f"\n### profile: {label} (by {sort})\n{body[start:].rstrip()}")
    return result


# ---------------------------------------------------------------- 1. compiling
def corpus_criteria() -> tuple[list[tuple[str, str]], str]:
    path = CORPUS / "trials.jsonl"
    if not path.is_file():
        return list(FALLBACK_CRITERIA), (f"corpus ABSENT ({path} not found): using the {len(FALLBACK_CRITERIA)} "
                                         "seed-like criteria written in benchmarks/bench.py")
    items: list[tuple[str, str]] = []
    trials = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            trials += 1
            for kind in ("inclusion", "exclusion"):
                items.extend((kind, text) for text in record.get(kind) or () if isinstance(text, str) and text.strip())
    return items, f"corpus: {path} ({trials:,} trials, {len(items):,} criteria)"


def bench_compile(table: Table, quick: bool, profile: bool) -> None:
    items, origin = corpus_criteria()
    log(origin)
    table.section("1. compiling criteria")
    table.add("criteria source", origin.split(" (")[0] if "ABSENT" not in origin else "seed-like fallback (corpus absent)")

    # One-off set-up, timed apart: vocabulary + unit table, then the LALR parser build.
    from eligibility.grammar import criterion_parser
    from eligibility.units import units
    from eligibility.vocabulary import vocabulary

    start = time.perf_counter()
    vocabulary()
    units()
    data_time = time.perf_counter() - start
    start = time.perf_counter()
    eligibility.compile_criterion("Age 18 to 65 years", "inclusion")  # builds the parser
    build_time = time.perf_counter() - start
    table.add("grammar build (one-off, excluded)", f"{build_time * 1000:,.0f} ms", "", f"+ vocabulary/units load {data_time * 1000:,.0f} ms")
    if not criterion_parser.cache_info().currsize:
        table.add("  (warning)", "parser not cached after first compile")

    if quick:
        random.Random(7).shuffle(items)
        items = items[:1500]
    rounds = 1 if len(items) >= 1000 else max(1, 3000 // max(len(items), 1))
    workload = items * rounds
    latencies: list[float] = []
    compiled = crashed = 0
    crash_example = ""

    def run() -> None:
        nonlocal compiled, crashed, crash_example
        clock = time.perf_counter
        compile_criterion = eligibility.compile_criterion
        for kind, text in workload:
            t0 = clock()
            try:
                predicate, _note = compile_criterion(text, kind)  # type: ignore[arg-type]
            except Exception as error:  # a crash is a bug elsewhere; count it, keep timing
                crashed += 1
                crash_example = crash_example or f"{type(error).__name__}: {error} <- {text[:60]!r}"
                predicate = None
            latencies.append(clock() - t0)
            compiled += predicate is not None

    start = time.perf_counter()
    profiled("compile_criterion over the corpus", profile, run)
    elapsed = time.perf_counter() - start
    rate = len(workload) / elapsed
    table.add("criteria compiled / s", f"{rate:,.0f}/s", *rate_status(rate, TARGET_COMPILE))
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    table.add("  per criterion p50 / p99 / max", f"{p50 * 1e6:,.0f} / {p99 * 1e6:,.0f} / {latencies[-1] * 1e6:,.0f} us")
    table.add("  criteria timed / compiled", f"{len(workload):,} / {compiled / len(workload):.1%}",
              "", f"{len(items):,} distinct x {rounds} round(s), {elapsed:.1f} s")
    if crashed:
        table.add("  crashed (exception escaped)", f"{crashed:,}", "", crash_example[:90])


# ---------------------------------------------------------------- 2./3. screening
def seed_trial() -> tuple[Any, str]:
    if RULE_FILE.is_file():
        try:
            return eligibility.load_trial(RULE_FILE), f"rule file {RULE_FILE.relative_to(ROOT)}"
        except eligibility.EligibilityError as error:
            log(f"rule file {RULE_FILE} does not load ({error}); compiling the seed text instead")
    text = SEED_TRIAL_TEXT.read_text(encoding="utf-8")
    return (eligibility.compile_trial(text, condition="als", source=str(SEED_TRIAL_TEXT)),
            f"{RULE_FILE.relative_to(ROOT)} ABSENT: compiled seed {SEED_TRIAL_TEXT.name}")


def _day(rng: random.Random, start: dt.date, span_days: int) -> str:
    return (start + dt.timedelta(days=rng.randrange(max(span_days, 1)))).isoformat()


def _value(rng: random.Random, low: float, high: float, abnormal: float, p_abnormal: float = 0.1) -> float:
    """Mostly within [low, high]; with probability ``p_abnormal`` above it, up to ``abnormal``."""
    return rng.uniform(high, abnormal) if rng.random() < p_abnormal else rng.uniform(low, high)


def patient_record(i: int, rng: random.Random) -> dict[str, Any]:
    """A varied, valid record: repeated labs with dates, units (mg/dL, umol/L, µmol/L) and ranges,
    ALSFRS-R, FVC, El Escorial, conditions present / absent, medications, procedures."""
    recent = AS_OF - dt.timedelta(days=400)
    record: dict[str, Any] = {"id": f"BENCH-{i:06d}", "sex": rng.choice(("male", "female"))}
    if rng.random() < 0.8:
        record["birth_date"] = _day(rng, dt.date(1945, 1, 1), 365 * 55)
    else:
        record["age"] = rng.randint(20, 85)
    observations: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):  # creatinine in a mix of units
        unit = rng.choice(("mg/dL", "umol/L", "µmol/L", "μmol/L", "mg/dl"))
        mg_dl = _value(rng, 0.6, 1.3, 2.8)
        value = round(mg_dl, 2) if unit.startswith("mg") else round(mg_dl * 88.4, 1)
        entry: dict[str, Any] = {"name": rng.choice(("serum creatinine", "creatinine", "SCr")), "value": value,
                                 "unit": unit, "date": _day(rng, recent, 420)}
        if rng.random() < 0.5:
            entry["reference_range"] = {"low": 0.6, "high": 1.2} if unit.startswith("mg") else {"low": 53, "high": 106}
        observations.append(entry)
    for name, unit, low, uln, high in (("ALT", "U/L", 8, 40, 130), ("AST", "U/L", 8, 40, 110),
                                       ("total bilirubin", "µmol/L", 3, 21, 60), ("aPTT", "s", 22, 35, 60),
                                       ("prothrombin time", "s", 9, 13.5, 25)):
        for _ in range(rng.randint(0, 2)):
            entry = {"name": name, "value": round(_value(rng, low, uln, high, 0.05), 1), "unit": unit,
                     "date": _day(rng, recent, 400)}
            if rng.random() < 0.7:
                entry["reference_range"] = {"high": uln}
            observations.append(entry)
    for _ in range(rng.randint(0, 4)):
        observations.append({"name": "ALSFRS-R", "value": rng.randint(29, 48), "date": _day(rng, recent, 400)})
    for _ in range(rng.randint(0, 3)):
        observations.append({"name": rng.choice(("FVC", "forced vital capacity")), "value": rng.randint(30, 110),
                             "unit": rng.choice(("% predicted", "%")), "date": _day(rng, recent, 400)})
    if rng.random() < 0.6:
        observations.append({"name": "El Escorial category", "date": _day(rng, recent, 400),
                             "value": rng.choice(("clinically definite", "clinically probable", "possible"))})
    if rng.random() < 0.5:
        observations.append({"name": "haemoglobin", "value": round(rng.uniform(9, 17), 1), "unit": "g/dL",
                             "date": _day(rng, recent, 400)})
    if rng.random() < 0.3:
        observations.append({"name": "vitamin D", "value": 31, "unit": "ng/mL", "date": _day(rng, recent, 400)})
    rng.shuffle(observations)
    record["observations"] = observations

    onset = AS_OF - dt.timedelta(days=rng.randrange(60, 1100))
    conditions: list[dict[str, Any]] = [{"name": rng.choice(("amyotrophic lateral sclerosis", "ALS")),
                                         "onset": onset.isoformat(),
                                         "diagnosed": (onset + dt.timedelta(days=rng.randrange(30, 400))).isoformat()}]
    for name in ("epilepsy", "myocardial infarction", "hepatitis B", "malignancy", "hypertension"):
        roll = rng.random()
        if roll < 0.4:
            conditions.append({"name": name, "present": False})
        elif roll < 0.45:
            conditions.append({"name": name, "onset": _day(rng, dt.date(2010, 1, 1), 5000)})
    record["conditions"] = conditions
    medications: list[dict[str, Any]] = []
    if rng.random() < 0.7:
        medications.append({"name": "riluzole", "start": _day(rng, dt.date(2023, 1, 1), 1100)})
    if rng.random() < 0.2:
        start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(600))
        medications.append({"name": "edaravone", "start": start.isoformat(), "end": (start + dt.timedelta(days=90)).isoformat()})
    if rng.random() < 0.2:
        medications.append({"name": "riluzole", "present": False})
    record["medications"] = medications
    procedures: list[dict[str, Any]] = []
    if rng.random() < 0.05:
        procedures.append({"name": "gastrostomy", "date": _day(rng, dt.date(2024, 1, 1), 700)})
    if rng.random() < 0.1:
        procedures.append({"name": "tracheostomy", "present": False})
    record["procedures"] = procedures
    return record


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_screen(table: Table, quick: bool, profile: bool) -> None:
    trial, origin = seed_trial()
    log(f"seed trial: {origin}")
    table.section("2./3. screening (one process, one thread)")
    compiled = sum(c.compiled for c in trial.criteria)
    table.add("trial", f"{trial.trial}: {compiled}/{len(trial.criteria)} compiled", "", origin)
    screener = TrialScreener(trial)
    count = 1_000 if quick else 5_000
    rng = random.Random(2026)
    records = [patient_record(i, rng) for i in range(count)]
    raws = [json.dumps(r, ensure_ascii=False) for r in records]
    table.add("patients generated", f"{count:,}", "", f"mean {sum(map(len, raws)) / count:,.0f} bytes of JSON each")
    screen = screener.screen
    as_of = AS_OF

    # validation alone, for reference (not part of any target)
    patients: list[Patient] = []
    validate_time = timed(lambda: patients.extend(Patient.model_validate(r) for r in records))
    table.add("  validate dict -> Patient (ref.)", f"{count / validate_time:,.0f}/s")

    # (a) validated, facts not built: the first screening builds each patient's facts
    def first() -> list[Any]:
        return [screen(p, as_of) for p in patients]

    start = time.perf_counter()
    reports = profiled("first screening (facts built)", profile, first)
    first_time = time.perf_counter() - start
    rate = count / first_time
    table.add("(a) first screening, builds facts", f"{rate:,.0f}/s", *rate_status(rate, TARGET_SCREEN))
    verdicts: dict[str, int] = {}
    evidence = 0
    for report in reports:
        verdicts[report.overall] = verdicts.get(report.overall, 0) + 1
        evidence += sum(len(r.evidence) for r in report.criteria)
    table.add("  overall verdicts", ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())), "",
              f"{evidence / count:.1f} evidence items / report")

    # (b) repeated screening of patients already screened (facts cached on the patient)
    rounds = 2 if quick else 4
    times = [timed(first) for _ in range(rounds)]
    rate = count / statistics.median(times)
    table.add("(b) repeat screening, facts cached", f"{rate:,.0f}/s", *rate_status(rate, TARGET_SCREEN))
    if profile:
        profiled("repeat screening (facts cached)", True, first)

    # building facts alone, on fresh copies (reference: what (a) pays beyond (b))
    from eligibility.facts import FactsBuilder
    builder = FactsBuilder()
    facts_time = timed(lambda: [builder.build(p) for p in patients])
    table.add("  facts build alone (ref.)", f"{count / facts_time:,.0f}/s")

    # report serialisation, for reference (the CLI's --format json does this)
    dump_time = timed(lambda: [r.to_json() for r in reports])
    table.add("  report.to_json() (ref.)", f"{count / dump_time:,.0f}/s")

    # 3. from JSON text: validate + screen per patient
    validate_json = Patient.model_validate_json

    def from_json() -> None:
        for raw in raws:
            screen(validate_json(raw), as_of)

    start = time.perf_counter()
    profiled("JSON text -> Patient -> screen", profile, from_json)
    json_time = time.perf_counter() - start
    rate = count / json_time
    table.add("(3) JSON text -> validate + screen", f"{rate:,.0f}/s", *rate_status(rate, TARGET_SCREEN))


# ---------------------------------------------------------------- 4. cold start
def cli_command() -> tuple[list[str], str]:
    script = ROOT / ".venv" / "bin" / "eligibility"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], ".venv/bin/eligibility"
    return [sys.executable, "-m", "eligibility"], "python -m eligibility (no .venv/bin/eligibility)"


def wall_times(command: list[str], runs: int, cwd: Path) -> tuple[float | None, str]:
    times = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            return None, f"exit {done.returncode}: {last[:100]}"
        times.append(elapsed)
    return statistics.median(times), f"median of {runs}, min {min(times):.3f} s"


def bench_cold_start(table: Table, quick: bool, scratch: Path) -> None:
    runs = 3 if quick else 5
    table.section("4. command-line cold start (subprocess wall time)")
    base, how = cli_command()
    table.add("command", how)
    notes: list[str] = []
    rule_file = RULE_FILE
    if not rule_file.is_file():
        trial, _origin = seed_trial()
        rule_file = scratch / "NCT04745299.yaml"
        rule_file.write_text(trial.to_rule_file("yaml"), encoding="utf-8")
        notes.append(f"rules/NCT04745299.yaml ABSENT: used a rule file compiled from the seed ({rule_file})")
    patient_file = EXAMPLE_PATIENT
    if not patient_file.is_file():
        patient_file = scratch / "needs-review.json"
        patient_file.write_text(json.dumps(patient_record(0, random.Random(1)), ensure_ascii=False), encoding="utf-8")
        notes.append(f"examples/needs-review.json ABSENT: used a generated patient ({patient_file})")
    for note in notes:
        log(note)
        table.add("  note", note.split(":")[0])

    tail = [str(patient_file), "--format", "json", "--as-of", AS_OF.isoformat()]
    for label, command in (
        ("screen rule file (.yaml)", [*base, "screen", str(rule_file), *tail]),
        ("screen seed text (.txt, grammar)", [*base, "screen", str(SEED_TRIAL_TEXT), *tail, "--condition", "als"]),
    ):
        median, detail = wall_times(command, runs, ROOT)
        if median is None:
            table.add(label, "FAILED", f"< {TARGET_COLD:g} s", detail)
        else:
            target, status = time_status(median, TARGET_COLD)
            table.add(label, f"{median:.3f} s", target, f"{status}; {detail}")
    for label, command in (("python -c pass (ref.)", [sys.executable, "-c", "pass"]),
                           ("python -c 'import eligibility' (ref.)", [sys.executable, "-c", "import eligibility"])):
        median, detail = wall_times(command, runs, ROOT)
        table.add(label, "FAILED" if median is None else f"{median:.3f} s", "", detail)


# ---------------------------------------------------------------- main
def environment() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "eligibility", "grammars", "rules"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "?", ""
    return (f"eligibility {eligibility.__version__} @ {commit}{' (+ uncommitted changes)' if dirty else ''}; "
            f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
            f"{dt.datetime.now():%Y-%m-%d %H:%M}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller workloads, fewer repeats")
    parser.add_argument("--profile", action="store_true", help="also print cProfile hot spots of each in-process stage")
    parser.add_argument("--only", choices=("compile", "screen", "cli"), action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    parts = set(args.only or ("compile", "screen", "cli"))

    table = Table()
    with tempfile.TemporaryDirectory(prefix="eligibility-bench-") as scratch:
        for name, run in (("compile", lambda: bench_compile(table, args.quick, args.profile)),
                          ("screen", lambda: bench_screen(table, args.quick, args.profile)),
                          ("cli", lambda: bench_cold_start(table, args.quick, Path(scratch)))):
            if name not in parts:
                continue
            log(f"running: {name} ...")
            try:
                run()
            except Exception as error:  # another file is mid-edit: report it, keep going
                table.add(f"{name}: ERROR", f"{type(error).__name__}: {error}"[:120])
    print(f"\neligibility benchmark{' (--quick)' if args.quick else ''}: {environment()}")
    print(table.render())
    print("figures only: nothing here fails on a slow machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
