"""The app manifest we ship declares exactly what the adapter listens to."""

from __future__ import annotations

from pathlib import Path

import yaml

from adapters.slack.listeners import COMMANDS

MANIFEST = Path(__file__).resolve().parents[3] / "adapters" / "slack_manifest.yml"


def test_the_manifest_declares_our_commands_events_and_scopes() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    declared = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert sorted(declared) == sorted(COMMANDS)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert {"app_mention", "message.channels", "file_shared"} <= set(
        settings["event_subscriptions"]["bot_events"]
    )
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "files:read", "users:read"} <= scopes
