"""FHIR input benchmark: bundle loading, screening throughput from FHIR, CLI cold start, and the
hand-written reader against fhir.resources. Prints figures; never asserts timings.

    .venv/bin/python benchmarks/bench_fhir.py             # about a minute
    .venv/bin/python benchmarks/bench_fhir.py --synthea   # also a full Synthea bundle (generated, ~15 s more)

What is measured (one thread; in-process figures are CPU time, since the machine is shared):

1. loading a bundle of about 1,000 resources (one carebundle patient's 21 quarterly visits;
   carebundle is a test dependency): ``json.loads``, then ``patient_from_fhir`` (first call,
   and the median of warm calls), next to the native record of the same patient's values.
2. screening throughput from FHIR: bundle dict -> Patient -> report for the seed trial, per
   patient, against the same from native JSON.
3. ``eligibility screen`` cold start (subprocess wall time, median) with examples/fhir-bundle.json
   and with the native examples/eligible.json.
4. fhir.resources (pydantic R4B models, the obvious library) on the same bundle: import time
   (subprocess) and ``Bundle.model_validate`` (first and warm), when it is installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eligibility  # noqa: E402
from eligibility import Patient, TrialScreener, patient_from_fhir  # noqa: E402

RULE_FILE = ROOT / "rules" / "NCT04745299.yaml"
EXAMPLE_BUNDLE = ROOT / "examples" / "fhir-bundle.json"
EXAMPLE_NATIVE = ROOT / "examples" / "eligible.json"
AS_OF = dt.date(2026, 1, 15)
cpu = time.process_time


def median_cpu(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = cpu()
        run()
        times.append(cpu() - start)
    return statistics.median(times)


def thousand_resource_bundle() -> tuple[dict[str, Any], str]:
    """About 1,000 resources: one carebundle patient's quarterly visits over five years, in one bundle."""
    try:
        import carebundle
    except ImportError:  # without the test extras: the example bundle's resources, repeated
        data = json.loads(EXAMPLE_BUNDLE.read_text(encoding="utf-8"))
        patient, rest = data["entry"][0], data["entry"][1:]
        data["entry"] = [patient, *(rest * (1000 // len(rest) + 1))][:1000]
        return data, "examples/fhir-bundle.json's resources repeated"
    visits = []
    for quarter in range(21):
        when = dt.date(2026, 1, 1) - dt.timedelta(days=91 * quarter)
        bundle = carebundle.generate_bundle(profile="type2_diabetes", seed=42, reference_date=when)
        visits.append(json.loads(carebundle.to_json(bundle))["entry"])
    entries = [visits[0][0], *(entry for visit in visits for entry in visit[1:])]
    return ({"resourceType": "Bundle", "type": "collection", "entry": entries},
            "carebundle type2_diabetes seed 42, 21 quarterly visits in one bundle")

def native_twin(patient: Patient) -> str:
    """The same patient as native JSON (what the FHIR reader produced, written back out)."""
    return patient.model_dump_json(exclude_none=True)


def synthea_bundle(scratch: Path) -> Path | None:
    try:
        subprocess.run([sys.executable, "-c", "from synthea.cli import cli; cli()", "-p", "1", "-s", "7", "-a", "55-70",
                        "-r", "20260101", "-o", str(scratch)], check=True, capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as error:
        print(f"  (synthea not run: {error})")
        return None
    return next((scratch / "fhir").glob("*.json"))


def bench_loading(data: dict[str, Any], label: str, repeat: int) -> Patient:
    text = json.dumps(data)
    entries = len(data["entry"])
    start = cpu()
    patient = patient_from_fhir(data)
    first = cpu() - start
    warm = median_cpu(lambda: patient_from_fhir(data), repeat)
    parse = median_cpu(lambda: json.loads(text), repeat)
    native = native_twin(patient)
    native_time = median_cpu(lambda: Patient.model_validate_json(native), repeat)
    print(f"  {label}: {entries:,} resources, {len(text) / 1e6:.1f} MB JSON -> {len(patient.observations):,} observations, "
          f"{len(patient.conditions)} conditions, {len(patient.medications)} medications, {len(patient.procedures)} procedures")
    print(f"    json.loads                      {parse * 1000:8.1f} ms")
    print(f"    patient_from_fhir, first call   {first * 1000:8.1f} ms   (vocabulary loaded before)")
    print(f"    patient_from_fhir, warm median  {warm * 1000:8.1f} ms   = {warm / entries * 1e6:.0f} us a resource"
          f"   (target: well under 1 s for 1,000)")
    print(f"    native JSON of the same record  {native_time * 1000:8.1f} ms   (Patient.model_validate_json)")
    return patient


def bench_throughput(data: dict[str, Any], repeat: int) -> None:
    screener = TrialScreener(eligibility.load_trial(RULE_FILE))
    native = native_twin(patient_from_fhir(data))
    count = 200

    def from_fhir() -> None:
        for _ in range(count):
            screener.screen(patient_from_fhir(data), AS_OF)

    def from_native() -> None:
        for _ in range(count):
            screener.screen(Patient.model_validate_json(native), AS_OF)

    fhir_time = median_cpu(from_fhir, repeat)
    native_time = median_cpu(from_native, repeat)
    print(f"  NCT04745299, bundle dict -> Patient -> report: {count / fhir_time:8.0f} patients/s "
          f"({len(data['entry'])} resources each)")
    print(f"  NCT04745299, native JSON -> Patient -> report: {count / native_time:8.0f} patients/s (same record)")


def bench_cold_start(runs: int) -> None:
    for label, record in (("FHIR bundle", EXAMPLE_BUNDLE), ("native JSON", EXAMPLE_NATIVE)):
        command = [sys.executable, "-m", "eligibility", "screen", str(RULE_FILE), str(record), "--as-of", "2026-01-15"]
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
            walls.append(time.perf_counter() - start)
        print(f"  eligibility screen NCT04745299 {record.name:<18} median {statistics.median(walls):.3f} s wall "
              f"(min {min(walls):.3f}; target < 0.5 s)   [{label}]")
    python = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python.append(time.perf_counter() - start)
    print(f"  python -c pass                                   median {statistics.median(python):.3f} s wall")


def bench_fhir_resources(data: dict[str, Any], repeat: int) -> None:
    probe = "import time; t = time.perf_counter(); import fhir.resources.R4B.bundle; print(time.perf_counter() - t)"
    try:
        imports = [float(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout)
                   for _ in range(3)]
    except subprocess.CalledProcessError:
        print("  fhir.resources is not installed: skipped")
        return
    from fhir.resources.R4B.bundle import Bundle

    start = cpu()
    Bundle.model_validate(data)
    first = cpu() - start
    warm = median_cpu(lambda: Bundle.model_validate(data), max(2, repeat // 3))
    entries = len(data["entry"])
    print(f"  import fhir.resources.R4B.bundle (fresh process)  median {statistics.median(imports):.3f} s")
    print(f"  Bundle.model_validate, first call   {first * 1000:8.1f} ms   (builds each resource type's models)")
    print(f"  Bundle.model_validate, warm median  {warm * 1000:8.1f} ms   = {warm / entries * 1e6:.0f} us a resource "
          "(and the models still have to be turned into the native record)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthea", action="store_true", help="also generate and load a full Synthea bundle")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    eligibility.compile_trial("Inclusion Criteria:\n* Serum creatinine < 2.0 mg/dL")  # vocabulary, units, grammar loaded
    data, label = thousand_resource_bundle()
    print("1. loading a bundle")
    bench_loading(data, label, args.repeat)
    if args.synthea:
        with tempfile.TemporaryDirectory() as scratch:
            path = synthea_bundle(Path(scratch))
            if path is not None:
                bench_loading(json.loads(path.read_text(encoding="utf-8")), f"Synthea {path.name}", args.repeat)
    print("2. screening throughput from FHIR")
    bench_throughput(data, 3)
    print("3. command-line cold start")
    bench_cold_start(5)
    print("4. fhir.resources on the same bundle")
    bench_fhir_resources(data, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
