"""The message catalogue: both languages hold the same keys, and every key the workbench uses exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.workbench import pages
from api.workbench.credentials import PasswordProblem
from api.workbench.i18n import CATALOGUE, DEFAULT, LANGUAGES, MissingMessage, language, translator
from api.workbench.templating import TEMPLATES

PACKAGE = Path(pages.__file__).parent
NAMESPACES = {key.split(".")[0] for key in CATALOGUE[DEFAULT]}


def _used_keys() -> set[str]:
    """Every key written out in the templates (``t("...")``) and in the package's code."""
    keys: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        # A key ending in "." is a family's prefix, completed from a value (listed below).
        keys |= {key for key in re.findall(r"""\bt\(\s*["']([A-Za-z0-9_.]+)["']""", template.read_text()) if not key.endswith(".")}
    for module in PACKAGE.glob("*.py"):
        for literal in re.findall(r'"([a-z_]+(?:\.[a-z_]+)+)"', module.read_text()):
            if literal.split(".")[0] in NAMESPACES and not literal.endswith(".html"):
                keys.add(literal)
    # Keys built from a value: the messages a redirect may ask for, and one per password rule.
    keys |= {f"done.{name}" for name in pages.DONE_MESSAGES}
    keys |= {f"error.password.{problem}" for problem in PasswordProblem}
    return keys


def test_both_languages_hold_the_same_keys() -> None:
    assert set(LANGUAGES) == set(CATALOGUE)
    zh, en = (set(CATALOGUE[lang]) for lang in LANGUAGES)
    assert zh - en == set(), f"missing in English: {sorted(zh - en)}"
    assert en - zh == set(), f"missing in Chinese: {sorted(en - zh)}"


def test_every_key_in_use_is_in_the_catalogue() -> None:
    used = _used_keys()
    assert len(used) > 30  # the scan found the templates' keys
    missing = {lang: sorted(used - set(CATALOGUE[lang])) for lang in LANGUAGES}
    assert missing == {lang: [] for lang in LANGUAGES}


def test_every_message_fills_the_same_fields_in_both_languages() -> None:
    fields = re.compile(r"\{(\w+)\}")
    for key in CATALOGUE[DEFAULT]:
        assert set(fields.findall(CATALOGUE["zh-CN"][key])) == set(fields.findall(CATALOGUE["en"][key])), key


def test_a_missing_key_fails_loudly() -> None:
    with pytest.raises(MissingMessage):
        translator("en")("no.such.key")


def test_messages_fill_their_fields() -> None:
    assert translator("en")("error.required", field="Login") == "Login is required"
    assert translator("zh-CN")("error.required", field="登录名") == "请填写登录名"


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [(None, "zh-CN"), ("", "zh-CN"), ("en", "en"), ("EN", "en"), ("zh", "zh-CN"), ("zh-cn", "zh-CN"), ("fr", "zh-CN")],
)
def test_language_choice_defaults_to_chinese(requested: str | None, chosen: str) -> None:
    assert language(requested) == chosen
