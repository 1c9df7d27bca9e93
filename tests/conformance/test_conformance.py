"""The OASIS profile test cases, replayed by ``kmip replay`` against a live server.

Prints every file's PASS/FAIL line and the profile × version table (``pytest -s`` shows them;
``tests/conformance/run.py --table`` prints the same without pytest). Fails if a file listed
in ``passing.txt`` no longer passes: the list only grows, as the server passes more files.
"""

from __future__ import annotations

from pathlib import Path

from kmip_server.operations.server_info import CONFORMANT_PROFILES

from .run import PROFILES, VECTORS, VERSIONS, case_files, profile_of, run, table

#: Query's profile names and the test cases that show conformance to each (the mandatory ones).
PROFILE_CASES = {
    "BASELINE_SERVER": "BL-M",
    "SYMMETRIC_KEY_LIFECYCLE_SERVER": "SKLC-M",
    "SYMMETRIC_KEY_FOUNDRY_SERVER": "SKFF-M",
    "OPAQUE_MANAGED_OBJECT_STORE_SERVER": "OMOS-M",
    "TAPE_LIBRARY_SERVER": "TL-M",
    "QUANTUM_SAFE_SERVER": "QS-M",
    "HTTPS_SERVER": "MSGENC-HTTPS-M",
    "JSON_SERVER": "MSGENC-JSON-M",
    "XML_SERVER": "MSGENC-XML-M",
    "STORAGE_ARRAY_WITH_SELF_ENCRYPTING_DRIVE_SERVER": "SASED-M",
    "SUITE_B_MINLOS_128_SERVER": "SUITEB_128-M",
    "SUITE_B_MINLOS_192_SERVER": "SUITEB_192-M",
    "BASIC_CRYPTOGRAPHIC_SERVER": "CS-BC-M",
    "ADVANCED_CRYPTOGRAPHIC_SERVER": "CS-AC-M",
    "RNG_CRYPTOGRAPHIC_SERVER": "CS-RNG-M",
    "PKCS_11_SERVER": "PKCS11-M",
    "ASYMMETRIC_KEY_LIFECYCLE_SERVER": "AKLC-M",
}

PASSING = Path(__file__).with_name("passing.txt")


def _listed() -> set[str]:
    lines = PASSING.read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_the_profiles_pass_at_least_as_before() -> None:
    files = case_files(VERSIONS, PROFILES)
    outcomes = run(files)
    names = {path: str(path.relative_to(VECTORS)) for path in files}
    for path in files:
        print(outcomes[path].replace(str(VECTORS) + "/", ""))
    print(table(outcomes))
    passing = {names[path] for path, line in outcomes.items() if line.startswith("PASS")}
    listed = _listed()
    assert listed <= set(names.values()), f"passing.txt names files that do not exist: {listed - set(names.values())}"
    regressed = sorted(listed - passing)
    assert not regressed, "files that passed before fail now:\n" + "\n".join(
        outcomes[path].replace(str(VECTORS) + "/", "") for path in files if names[path] in regressed
    )
    # Query Profiles claims exactly what is shown here: each profile it reports, in each version,
    # has test cases, and all of them pass.
    for profile, versions in CONFORMANT_PROFILES.items():
        for version in versions:
            cases = [p for p in files if profile_of(p) == PROFILE_CASES[profile] and p.parts[-3] == f"v{version}"]
            assert cases, f"Query reports {profile} for KMIP {version}, which has no test cases here"
            failing = [names[p] for p in cases if not outcomes[p].startswith("PASS")]
            assert not failing, f"Query reports {profile} for KMIP {version}, but these fail: {failing}"
    newly = sorted(passing - listed)
    if newly:
        print("passing now, add to tests/conformance/passing.txt:\n" + "\n".join(newly))
    unclaimed = [
        f"{profile} {version}"
        for profile, cases in PROFILE_CASES.items()
        for version in VERSIONS
        if version not in CONFORMANT_PROFILES.get(profile, ())
        and (shown := [p for p in files if profile_of(p) == cases and p.parts[-3] == f"v{version}"])
        and all(outcomes[p].startswith("PASS") for p in shown)
    ]
    if unclaimed:
        print("all mandatory cases pass, Query does not report (server_info.CONFORMANT_PROFILES):")
        print("\n".join(unclaimed))
