"""Remote error text never carries any form of any value Lockstep holds (issue: secrets in remote
error text). Property tests over arbitrary values and the ways a service echoes them, plus one
regression test per form the security review found."""

from __future__ import annotations

import gc
import html
import json
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from sync.adapters.dataverse import DataverseClient, raise_for_error
from sync.errors import PermanentError
from sync.redact import (
    FRAGMENT,
    LONG,
    MASK,
    WITHHELD,
    WITHHELD_REMOTE,
    held_values,
    redact_remote,
    register,
    remote_code,
    scrub,
)
from sync.redact_registry import Registry
from sync.redact_views import fold
from tests.unit.test_adapters import FAST, ORG, FakeCredential


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the values it registers (a failed test's traceback keeps its own alive)."""
    monkeypatch.setattr("sync.redact.REGISTRY", Registry())


def _json(value: str) -> str:
    return json.dumps(value)[1:-1]


def _json_unicode(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def _json_twice(value: str) -> str:
    return json.dumps(json.dumps(value))[1:-1]


def _json_upper_hex(value: str) -> str:  # .NET's encoder writes \u00F6, Python \u00f6
    out = []
    for c in value:
        if c.isascii() and c.isalnum():
            out.append(c)
        else:
            units = c.encode("utf-16-be", errors="surrogatepass")
            out.extend(f"\\u{units[i : i + 2].hex().upper()}" for i in range(0, len(units), 2))
    return "".join(out)


ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "json": _json,
    "json-unicode": _json_unicode,
    "json-twice": _json_twice,
    "json-upper-hex": _json_upper_hex,
    "url": lambda v: quote(v, safe=""),
    "url-path": quote,
    "url-plus": quote_plus,
    "url-lower-hex": lambda v: quote(v, safe="").lower() if v.isascii() else quote(v, safe=""),
    "html": html.escape,
    "trimmed": str.strip,
    "upper": str.upper,
    "lower": str.lower,
}

# Values a credential may be: printable, any script, quotes and backslashes included.
values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=FRAGMENT + 2, max_size=60
).filter(lambda v: len(v.strip()) >= FRAGMENT + 2 and len(" ".join(v.split())) >= FRAGMENT + 2)
messages = st.sampled_from(
    [
        "Invalid value {} for column contoso_Secret",
        "The value '{}' failed validation",
        'plug-in said: {{"value": "{}"}}',
        "{}",
        "prefix{}suffix",
    ]
)
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _assert_no_form(text: str, value: str, fragment: int) -> None:
    """Neither the value nor any encoding of it, nor a `fragment`-long run of it, is in text.

    Remote text loses every FRAGMENT-long run; other text (our words around remote parts) every
    LONG run and every whole value, so that words it shares with a value stay readable."""
    folded = fold(text)  # lengths as the redactor counts them: 'İ' is one character, not two
    for name, encode in ENCODINGS.items():
        form = fold(encode(value))
        if len(form.strip()) >= fragment:
            assert form not in folded, f"{name} form of the value survived in {text!r}"
    plain = fold(value)
    for start in range(len(plain) - fragment + 1):
        assert plain[start : start + fragment] not in folded, f"a fragment survived in {text!r}"


@PROPERTY
@given(value=values, encoding=st.sampled_from(sorted(ENCODINGS)), template=messages)
def test_held_values_never_survive_in_any_encoding(value: str, encoding: str, template: str) -> None:
    held = SecretStr(value)
    register(held)  # as the adapters do where a value enters memory; nothing passed to scrub
    text = template.format(ENCODINGS[encoding](value))
    _assert_no_form(redact_remote(text), value, FRAGMENT)
    _assert_no_form(scrub(text), value, LONG)
    for form in {value, value.strip()}:
        assert form not in scrub(text)
    del held


@PROPERTY
@given(current=values, previous=values, cut=st.integers(min_value=FRAGMENT, max_value=40))
def test_current_and_previous_and_truncated_forms(current: str, previous: str, cut: int) -> None:
    held = [SecretStr(current), SecretStr(previous)]
    register(*held)
    text = f"cannot replace '{previous[:cut]}...' with {_json(current)}; was {quote(previous)}"
    for cleaned, fragment in ((redact_remote(text), FRAGMENT), (scrub(text), LONG)):
        _assert_no_form(cleaned, current, fragment)
        _assert_no_form(cleaned, previous[:cut], fragment)


@PROPERTY
@given(
    value=st.text(min_size=1, max_size=FRAGMENT - 1).filter(lambda v: v.strip()), noise=st.text(max_size=40)
)
def test_short_values_withhold_the_remote_message_rather_than_mask_it(value: str, noise: str) -> None:
    held = SecretStr(value)
    register(held)
    cleaned = redact_remote(f"{noise} {value} {noise}")
    assert cleaned == WITHHELD_REMOTE or value.strip().lower() not in cleaned.lower()  # or quoted away
    assert MASK not in cleaned
    assert scrub(f"bad value {value} here") == WITHHELD


def test_regression_json_escaped_value() -> None:
    held = SecretStr('p"ss\\wörd-9f3a')
    register(held)
    text = 'Dataverse: invalid {"value":"p\\"ss\\\\w\\u00f6rd-9f3a"}'
    assert "9f3a" not in redact_remote(text) and "9f3a" not in scrub(text)


def test_regression_previous_value_is_covered_without_being_passed() -> None:
    previous = SecretStr("OLD-credential-still-valid")
    register(previous)  # what reading the Dataverse value row does
    assert "OLD-credential" not in scrub("row held OLD-credential-still-valid", SecretStr("NEW-value-123"))


def test_regression_trimmed_and_truncated_values() -> None:
    held = SecretStr("  NEW-abcdefghijklmnop  ")
    register(held)
    assert redact_remote("was NEW-abcdefghijklmnop.").replace(" ", "") == "was***."  # its spaces too
    assert redact_remote("value NEW-abcdefgh... is invalid").replace(" ", "") == f"value{MASK}...isinvalid"
    assert scrub("value NEW-abcdefghijk... is invalid").replace(" ", "") == f"value{MASK}...isinvalid"


def test_our_words_a_value_shares_stay_readable() -> None:
    held = SecretStr("LOCKSTEP-CANARY-rotated-0123456789abcdef")
    register(held)
    reason = "stage 2 failed: rotate again (is the identity a user with the Lockstep security role?)"
    assert scrub(reason) == reason
    assert "LOCKSTEP-CANARY" not in scrub("got LOCKSTEP-CANARY-rotated-0123")


def test_regression_one_value_a_prefix_of_another() -> None:
    short, long = SecretStr("secret-Value"), SecretStr("secret-ValueProd")
    register(short, long)
    assert scrub("got secret-ValueProd") == f"got {MASK}"  # not '***Prod'


def test_regression_one_character_value_is_no_giveaway() -> None:
    held = SecretStr("e")
    register(held)
    assert redact_remote("The value e is not allowed here") == WITHHELD_REMOTE
    assert scrub("value e rejected") == WITHHELD
    assert scrub("Dataverse refused the write") == "Dataverse refused the write"  # inside words: nothing told


def test_regression_url_encoded_value() -> None:
    held = SecretStr("a b/c?d=é&x")
    register(held)
    assert "%2F" not in scrub(f"GET /x?v={quote(held.get_secret_value(), safe='')}")


def test_registry_forgets_values_nothing_holds() -> None:
    held = SecretStr("ephemeral-value-0001")
    register(held)
    assert "ephemeral-value-0001" in held_values()
    del held
    gc.collect()
    assert "ephemeral-value-0001" not in held_values()
    assert scrub("ephemeral-value-0001") == "ephemeral-value-0001"


def test_remote_code_kept_only_when_it_looks_like_one() -> None:
    held = SecretStr("code-like-secret-1")
    register(held)
    assert remote_code("0x80040203") == "0x80040203"
    assert remote_code("code-like-secret-1") == ""
    assert remote_code("<a href=x>") == ""


def test_scrub_still_takes_explicit_values() -> None:
    assert scrub("was abc-not-registered", SecretStr("abc-not-registered")) == f"was {MASK}"
    assert scrub("nothing", None) == "nothing"


@pytest.mark.parametrize("status", [400, 403])
def test_dataverse_error_path_redacts_every_held_value(status: int) -> None:
    previous = SecretStr("OLD-plugin-echo-777")
    register(previous)
    body = {
        "error": {
            "code": "0x80040265",
            "message": "Plug-in: old value OLD-plugin-echo-777 (JSON: \\u004fLD-plugin-echo-777)",
        }
    }
    response = httpx.Response(status, json=body, request=httpx.Request("PATCH", "https://org.example"))
    with pytest.raises(PermanentError) as caught:
        raise_for_error(response, "updating the value", SecretStr("NEW-value-xyz-1"))
    message = str(caught.value)
    assert "plugin-echo" not in message and f"HTTP {status} 0x80040265" in message


@respx.mock
async def test_dataverse_reads_register_the_previous_value() -> None:
    respx.get(f"{ORG}/api/data/v9.2/environmentvariabledefinitions").respond(
        200,
        json={
            "value": [
                {
                    "environmentvariabledefinitionid": "d",
                    "schemaname": "contoso_Secret",
                    "type": 100000003,
                    "environmentvariabledefinition_environmentvariablevalue": [
                        {
                            "environmentvariablevalueid": "r",
                            "value": "PREVIOUS-row-value-55",
                            "@odata.etag": 'W/"1"',
                        }
                    ],
                }
            ]
        },
    )
    async with httpx.AsyncClient() as http:
        client = DataverseClient(http, FakeCredential(), FAST)  # type: ignore[arg-type]
        definition = await client.get_definition(ORG, "contoso_Secret")
    assert definition is not None
    assert "PREVIOUS-row-value-55" in held_values()
    assert "PREVIOUS-row" not in scrub("the old PREVIOUS-row-value-55 is still valid")


def test_a_value_echoed_lower_cased_is_masked_where_lower_case_changes_its_length() -> None:
    """'İ'.lower() is two characters ('i' and a combining dot): a service that lower-cases the
    value it echoes leaves a form that folding the text cannot line up with the value."""
    held = SecretStr("LOCKSTEP-CANARY-İstanbul-42")
    register(held)
    echoed = f"Invalid value '{held.get_secret_value().lower()}'"
    for cleaned in (redact_remote(echoed), scrub(echoed)):
        assert "istanbul-42" not in fold(cleaned).replace("\u0307", "")
        assert "canary" not in cleaned.lower()
