#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the repository's fixtures:
Blue Button's observed answers (fixtures/bb2-observed), its sample resources
(fixtures/bb2-samples), the broker's example configuration, and hand-written edge cases.
The seeds are committed; run this again after a fixture changes: python3 fuzz/seeds.py"""

import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
observed = {}
for name in ["raw-bb2.json", "raw-bb2-extra.json", "raw-bb2-429.json"]:
    observed.update(json.loads((ROOT / "fixtures" / "bb2-observed" / name).read_text()))


def body(answer):
    b = answer.get("body")
    return b.encode() if isinstance(b, str) else json.dumps(b).encode()


def write(target, seeds):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for seed in seeds:
        seed = seed if isinstance(seed, bytes) else seed.encode()
        (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


STATE = "jLFPB4lZ6YeDK_9RAybCC0rirI_1Osvn"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkdBjftJeZ4CVP"
callbacks = [a["headers"]["location"] for a in observed.values() if "callback?" in a["headers"].get("location", "")]
callbacks += [
    f"https://app.example.com/callback?code=abc&state={STATE}&iss=https%3A%2F%2Fehr.example.com",
    f"https://app.example.com/callback?state={STATE}&state={STATE}&code=abc",
    f"https://app.example.com/callback?code=a&error=access_denied&state={STATE}",
    f"https://app.example.com/callback?error=server_error&error_description=x+y&error_uri=https%3A%2F%2Fx&state={STATE}",
    f"https://app.example.com/callback?code=%00&state={STATE}#code=x",
    "https://app.example.com/claims?tab=2#top",
]
write("callback", callbacks)

records = []
for url in callbacks[:3] + [f"https://app.example.com/callback?code=abc&state={STATE}"]:
    state = url.split("state=")[1].split("&")[0]
    for return_to in ["", "/claims", "/a|b?c=d", "//evil.example", "/\\evil", "/\t/evil", "/%09/evil"]:
        records.append(f"{url}\0" + "|".join(["1", "1799999000000", "1800000600000", state, "medicare", VERIFIER, return_to]))
records.append(f"https://app.example.com/callback?code=abc&state={STATE}\0" + "|".join(["1", "1", "1800000600000", STATE, "ehr", VERIFIER, ""]))
write("flow_record", records)

scopes = [
    "openid profile launch/patient patient/Patient.rs patient/Coverage.rs patient/ExplanationOfBenefit.rs offline_access",
    "patient/Patient.read patient/Coverage.read patient/ExplanationOfBenefit.read profile",
    "patient/*.rs openid fhirUser offline_access",
    "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
    "user/*.cruds system/Patient.read  patient/Condition.s",
    "",
]
for answer in observed.values():
    b = answer.get("body")
    if isinstance(b, dict) and isinstance(b.get("scope"), str):
        scopes.append(b["scope"])
write("scope", scopes)

tokens = [body(a) for k, a in observed.items() if k.startswith(("token_", "refresh_", "second_consent", "first_refresh"))]
tokens.append(json.dumps({"access_token": "a" * 40, "token_type": "Bearer", "expires_in": 3600, "scope": "patient/*.rs openid", "refresh_token": "r" * 40, "patient": "123", "id_token": "x.y.z"}).encode())
tokens.append(json.dumps({"access_token": "a" * 40, "token_type": "bearer", "expires_in": 18446744073709551615}).encode())
write("token_response", tokens)

errors = []
for i, answer in enumerate(a for a in observed.values() if a.get("status", 200) >= 400):
    errors.append(bytes([i % 256]) + body(answer))
errors += [b"\x08access_denied\nThe user said no\nhttps://x", b"\x01{\"error\":\"invalid_grant\",\"error_description\":" + b"\"" + b"x" * 300 + b"\"}"]
write("oauth_error", errors)

patient = "-10000000930956"
proxy = []
for selector in [0, 1]:
    for resource, rest in [("Patient", patient), ("ExplanationOfBenefit", "carrier--10000000930956000"), ("Coverage", "part-a--10000000930956"),
                           ("Patient", ".."), ("Patient", "%2e%2e"), ("Patient", "a/b"), ("Observation", "x?_format=xml"), ("Patient", "x" * 65)]:
        proxy.append(bytes([selector]) + f"{resource}\0{rest}".encode())
for selector in [2, 3]:
    for resource, query in [("ExplanationOfBenefit", "_count=50&startIndex=100&type=carrier,pde"),
                            ("ExplanationOfBenefit", "service-date=ge2020-01-01&service-date=le2021-01-01&_lastUpdated=gt2020-01-01"),
                            ("Coverage", "_count=10"), ("Observation", "category=laboratory&date=ge2020&_sort=-date&_count=20"),
                            ("Observation", "patient=someone-else"), ("Condition", "clinical-status=active&_include=Condition:encounter"),
                            ("Patient", "_id=1"), ("Observation", "_page=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                            ("ExplanationOfBenefit", "_count=51"), ("ExplanationOfBenefit", "startIndex=-1&startIndex=2")]:
        proxy.append(bytes([selector]) + f"{resource}\0{query}".encode())
write("proxy", proxy)

bundles = [(ROOT / "fixtures" / "bb2-samples" / n).read_bytes() for n in ["eob_search_v2.json", "eob_search_pt_v2.json", "coverage_search_v2.json", "patient_search_v2.json", "fhir_meta_v2.json"]]
bundles += [body(a) for k, a in observed.items() if k in ("eob_search", "eob_search_noslash", "coverage_no_demographics")]
opaque = {"resourceType": "Bundle", "type": "searchset", "total": 3, "link": [
    {"relation": "self", "url": "https://ehr.example.com/fhir/r4/Observation?patient=" + patient},
    {"relation": "next", "url": "https://ehr.example.com/fhir/r4?_getpages=abc&_getpagesoffset=20&_count=10"},
    {"relation": "previous", "url": "https://elsewhere.example.com/fhir/r4?_getpages=abc"}],
    "entry": [{"resource": {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/" + patient}}}]}
bundles.append(json.dumps(opaque).encode())
bundles.append(b"https://sandbox.bluebutton.cms.gov/v2/fhir/ExplanationOfBenefit/?_count=10&startIndex=10&patient=-1")
write("bundle_links", bundles)

configs = [(ROOT / "broker" / "broker.example.toml").read_bytes()]
configs.append(b"""public_base_url = "http://localhost:8080"
database = "sqlite::memory:"

[[keys]]
id = "k1"
key = "Y2FuYXJ5LWtleS1ieXRlcy0zMi1sb25nLTAxMjM0NTY="

[[providers]]
id = "medicare"
name = "Medicare"
kind = "blue_button"
base_url = "http://127.0.0.1:8123"
client_id = "client-1"
client_secret = "s"
redirect_uri = "http://localhost:8080/callback"
requests_per_second = 9
""")
write("config", configs)

cookie = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
write("cookies", [cookie, f"__Host-cm-session={cookie}", f"__Host-cm-session={cookie}; __Host-cm-flow={cookie}",
                  f"a=b; __Host-cm-session={cookie}; __Host-cm-session={cookie}", cookie[:-1] + "=", cookie + "A", "__Host-cm-session="])
