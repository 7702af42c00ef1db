"""The Slack adapter: mentions, shared PDFs, slash commands and menus on one agent core."""

from adapters.slack.options import SlackOptions
from adapters.slack.service import SlackAdapter, SlackUnavailable

__all__ = ["SlackAdapter", "SlackOptions", "SlackUnavailable"]
