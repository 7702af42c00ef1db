"""Personas and human profiles: the shipped ones, an operator's own, and names that do not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.mind.prompts
from agent.errors import ArchivistError
from agent.mind.profiles import Profiles, UnknownProfile

SHIPPED = Path(agent.mind.prompts.__file__).parent


def test_the_shipped_personas_and_humans_are_listed_and_loaded() -> None:
    profiles = Profiles()
    assert {"memgpt_doc", "sam_pov"} <= set(profiles.names("personas"))
    assert "basic" in profiles.names("humans")
    for name in profiles.names("personas"):
        shipped = (SHIPPED / "personas" / f"{name}.txt").read_text(encoding="utf-8")
        assert profiles.persona(name) == shipped.strip() != ""
    for name in profiles.names("humans"):
        shipped = (SHIPPED / "humans" / f"{name}.txt").read_text(encoding="utf-8")
        assert profiles.human(name) == shipped.strip() != ""


def test_the_operators_folder_overrides_and_adds(tmp_path: Path) -> None:
    (tmp_path / "sam_pov.txt").write_text("  I am our own Sam.\n", encoding="utf-8")
    (tmp_path / "pirate.txt").write_text("I speak like a pirate.", encoding="utf-8")
    (tmp_path / "humans").mkdir()
    (tmp_path / "humans" / "ops.txt").write_text("The people here run the plant.", encoding="utf-8")
    profiles = Profiles(tmp_path)
    assert profiles.persona("sam_pov") == "I am our own Sam."
    assert profiles.persona("pirate") == "I speak like a pirate."
    assert profiles.persona("memgpt_doc") == Profiles().persona("memgpt_doc")
    assert profiles.human("ops") == "The people here run the plant."
    assert {"memgpt_doc", "pirate", "sam_pov"} <= set(profiles.names("personas"))
    assert {"basic", "ops"} <= set(profiles.names("humans"))
    assert "pirate" not in profiles.names("humans") and "ops" not in profiles.names("personas")


def test_an_unknown_name_is_an_error_listing_the_choices(tmp_path: Path) -> None:
    (tmp_path / "pirate.txt").write_text("I speak like a pirate.", encoding="utf-8")
    profiles = Profiles(tmp_path)
    with pytest.raises(UnknownProfile) as persona:
        profiles.persona("nobody")
    choices = ", ".join(profiles.names("personas"))
    assert str(persona.value) == f"There is no persona called 'nobody'; choose from: {choices}."
    assert "pirate" in choices
    with pytest.raises(ArchivistError, match="There is no human called 'nobody'; choose from: "):
        profiles.human("nobody")


def test_a_name_that_is_a_path_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("Not a persona.", encoding="utf-8")
    (tmp_path / "personas").mkdir()
    profiles = Profiles(tmp_path / "personas")
    with pytest.raises(UnknownProfile, match=r"'\.\./secret' is not a valid persona name"):
        profiles.persona("../secret")
