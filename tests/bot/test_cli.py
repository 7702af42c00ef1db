"""The ``archivist`` command: in-process through click's runner, and as a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.commands.running import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_USAGE
from tests import pdfs
from tests.bot.test_load_progress import said

SECRET = "tok-cli-secret-0123456789"


@pytest.fixture
def env(tmp_path: Path, model_cache: Path, clean_env: None) -> dict[str, str]:
    """Environment for a CLI run: its own data folder, the shared model cache."""
    return {
        "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(model_cache),
    }


def archivist(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def archivist_process(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_load_list_search_show_delete(env: dict[str, str], tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 5)
    loaded = archivist(env, "load", "directory", "--name", "manual", "--input-files", str(manual))
    assert loaded.exit_code == 0, loaded.output
    assert "from 5 pages (1 file) into source 'manual'" in loaded.stdout

    listed = archivist(env, "sources", "list", "--json")
    [source] = json.loads(listed.stdout)
    assert (source["name"], source["status"], source["pages"]) == ("manual", "ready", 5)

    query = pdfs.manual_marker(3)
    found = archivist(env, "sources", "search", "--source", "manual", "--json", query)
    results = json.loads(found.stdout)
    assert {"text", "document", "page", "score", "source"} <= set(results[0])
    assert (results[0]["document"], results[0]["page"], results[0]["source"]) == (
        "manual.pdf",
        3,
        "manual",
    )
    plain = archivist(env, "sources", "search", "--source", "manual", "--top-k", "2", query)
    assert plain.stdout.startswith("[1] manual.pdf p.3 (")
    assert f"Showing 1-2 of {source['passages']} passages" in plain.stdout

    shown = archivist(env, "sources", "show", "manual")
    assert "manual.pdf" in shown.stdout and "ready" in shown.stdout

    deleted = archivist(env, "sources", "delete", "manual", "--yes")
    assert deleted.exit_code == 0 and "Deleted source 'manual'" in deleted.stdout
    gone = archivist(env, "sources", "search", "--source", "manual", query)
    assert gone.exit_code == EXIT_NOT_FOUND
    assert "No such source: 'manual'" in gone.stderr


def test_attach_and_detach_by_conversation(env: dict[str, str], tmp_path: Path) -> None:
    doc = pdfs.make_pdf(tmp_path / "a.pdf", ["Attachments are links, not copies."])
    archivist(env, "load", "directory", "--name", "a", "--input-files", str(doc))
    key = "console:local:default"
    first = archivist(env, "sources", "attach", "a", "--conversation", key)
    second = archivist(env, "sources", "attach", "a", "--conversation", key)
    assert first.stdout.startswith("Attached 'a'") and second.stdout.startswith("Already attached")
    off = archivist(env, "sources", "detach", "a", "--conversation", key)
    assert off.stdout.startswith("Detached 'a'")
    missing = archivist(env, "sources", "attach", "x' or 1=1 --", "--conversation", key)
    assert missing.exit_code == EXIT_NOT_FOUND


def test_a_bad_file_exits_non_zero_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    page = pdfs.make_html_as_pdf(tmp_path / "login.pdf")
    result = archivist(env, "load", "directory", "--name", "x", "--input-files", str(page))
    assert result.exit_code == EXIT_FAILED
    assert "login.pdf" in result.stderr and "HTML" in result.stderr
    assert json.loads(archivist(env, "sources", "list", "--json").stdout) == []


def test_a_folder_load_reports_the_bad_file_and_loads_the_rest(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    pdfs.make_pdf(folder / "a.pdf", ["Alpha document."])
    pdfs.make_encrypted_pdf(folder / "sub" / "locked.pdf")
    pdfs.make_pdf(folder / "sub" / "b.pdf", ["Beta document."])
    flat = archivist(env, "load", "directory", "--name", "flat", "--input-dir", str(folder))
    assert flat.exit_code == 0 and "(1 file)" in flat.stdout
    deep = archivist(
        env, "load", "directory", "--name", "deep", "--input-dir", str(folder), "--recursive"
    )
    assert deep.exit_code == EXIT_FAILED
    assert "(2 files)" in deep.stdout and "1 failed" in deep.stdout
    assert "locked.pdf" in deep.stderr and "password" in deep.stderr


def test_a_config_error_names_the_key(env: dict[str, str]) -> None:
    result = archivist({**env, "ARCHIVIST_INGEST_MAX_PAGES": "lots"}, "sources", "list")
    assert result.exit_code == EXIT_USAGE
    assert "ingest.max_pages" in result.stderr and "ARCHIVIST_INGEST_MAX_PAGES" in result.stderr


def test_every_command_has_help(env: dict[str, str]) -> None:
    for command in (
        [],
        ["configure"],
        ["load", "directory"],
        ["sources", "list"],
        ["sources", "show"],
        ["sources", "delete"],
        ["sources", "attach"],
        ["sources", "detach"],
        ["sources", "search"],
    ):
        result = archivist(env, *command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout, command


def test_configure_writes_a_valid_file(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "conf" / "config.toml"
    result = archivist(
        env,
        "configure",
        "--non-interactive",
        "--output",
        str(target),
        "--milvus-uri",
        "http://milvus.internal:19530",
        "--llm-base-url",
        "http://127.0.0.1:8000/v1",
    )
    assert result.exit_code == 0, result.output
    listed = archivist_process({"ARCHIVIST_CONFIG": str(target)}, "configure", "--help")
    assert listed.returncode == 0
    text = target.read_text()
    assert 'uri = "http://milvus.internal:19530"' in text
    assert 'base_url = "http://127.0.0.1:8000/v1"' in text
    refused = archivist(env, "configure", "--non-interactive", "--output", str(target))
    assert refused.exit_code == EXIT_USAGE and "--force" in refused.output


def test_unreachable_milvus_is_one_sentence_and_never_shows_the_token(env: dict[str, str]) -> None:
    result = archivist_process(
        {
            **env,
            "ARCHIVIST_MILVUS_URI": "http://127.0.0.1:9",
            "ARCHIVIST_MILVUS_TOKEN": SECRET,
            "ARCHIVIST_MILVUS_TIMEOUT": "2",
            "OPENAI_API_KEY": "sk-" + SECRET,
        },
        "-v",
        "sources",
        "search",
        "--source",
        "x",
        "anything",
    )
    assert result.returncode == EXIT_UNAVAILABLE
    assert "error: Milvus at http://127.0.0.1:9 is unreachable" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@contextmanager
def lite_held(env: dict[str, str]) -> Iterator[None]:
    """Another process holding the Milvus Lite file open, as a running bot would."""
    db = Path(env["ARCHIVIST_STORAGE_DATA_DIR"]) / "milvus.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pymilvus import MilvusClient;"
            f" c = MilvusClient({str(db)!r}); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "ready"
    try:
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_piped_load_reports_progress_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 40)
    loaded = archivist_process(
        {**env, "ARCHIVIST_INGEST_PAGES_PER_TASK": "4"},
        *("load", "directory", "--name", "manual", "--input-files", str(manual)),
    )
    assert loaded.returncode == 0, loaded.stderr
    lines = loaded.stderr.splitlines()
    # Every tenth of 40 pages is one range of 4: a line for each, the bar's redraws for none.
    assert [line.split(":")[1].split(",")[0] for line in lines] == [
        f" {pages}/40 pages ({pages * 100 // 40}%)" for pages in range(4, 41, 4)
    ]
    assert all(line.startswith("manual.pdf: ") for line in lines)
    assert "from 40 pages (1 file) into source 'manual'" in loaded.stdout


def test_a_locked_lite_file_is_explained(env: dict[str, str]) -> None:
    with lite_held(env):
        result = archivist_process(env, "sources", "search", "--source", "x", "anything")
    assert result.returncode == EXIT_UNAVAILABLE
    assert "in use by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_state_commands_run_beside_a_bot_holding_the_lite_file(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Issue 14: listing, showing, attaching and detaching are rows in the state file, so a
    # running bot does not lock them out, and the bot sees what they change.
    doc = pdfs.make_pdf(tmp_path / "a.pdf", ["Attachments are links, not copies."])
    loaded = archivist_process(env, "load", "directory", "--name", "a", "--input-files", str(doc))
    assert loaded.returncode == 0, loaded.stderr
    chat = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert chat.stdout is not None and chat.stdin is not None
    here = "console:local:default"
    try:
        # Its first line comes once it holds the stores (search-only: no model configured).
        assert "No language model configured" in chat.stdout.readline()
        held = archivist_process(env, "sources", "search", "--source", "a", "links")
        listed = archivist_process(env, "sources", "list", "--json")
        shown = archivist_process(env, "sources", "show", "a")
        attached = archivist_process(env, "sources", "attach", "a", "--conversation", here)
        chat.stdin.write("are attachments copies?\n/memory\n")
        chat.stdin.flush()
        answer = _read_until(chat, "<persona")
        agents = archivist_process(env, "agents", "list", "--json")
        memory = archivist_process(env, "agents", "show", here)
        detached = archivist_process(env, "sources", "detach", "a", "--conversation", here)
        chat.stdin.write("are attachments copies?\n/memory\n")
        chat.stdin.flush()
        after = _read_until(chat, "<persona")
    finally:
        chat.stdin.close()
        chat.wait(timeout=60)
    assert held.returncode == EXIT_UNAVAILABLE  # searching needs the Lite file: still refused
    assert listed.returncode == 0, listed.stderr
    assert [s["name"] for s in json.loads(listed.stdout)] == ["a"]
    assert shown.returncode == 0 and "a.pdf" in shown.stdout
    assert attached.returncode == 0, attached.stderr
    assert f"Attached 'a' to {here}." in attached.stdout
    assert "Sources: a.pdf p.1" in answer  # the running chat searched what the CLI attached
    assert [a["key"] for a in json.loads(agents.stdout)] == [here]
    assert memory.returncode == 0 and "attached: a\n" in memory.stdout
    assert detached.returncode == 0 and f"Detached 'a' from {here}." in detached.stdout
    assert "Sources: a.pdf" not in after


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    """What ``process`` printed up to and including the line holding ``marker``."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = process.stdout.readline()
        assert line, "".join(lines)  # it ended without printing the marker
        lines.append(line)
    return "".join(lines)


def test_a_load_killed_midway_is_rolled_back_at_the_next_start(
    env: dict[str, str], tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "big.pdf", 120)
    slow = {**env, "ARCHIVIST_INGEST_PAGES_PER_TASK": "2"}
    loader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "load",
            "directory",
            "--name",
            "big",
            "--input-files",
            str(manual),
        ],
        env={**os.environ, **slow},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = Path(env["ARCHIVIST_STORAGE_DATA_DIR"]) / "archivist.db"
    deadline = time.monotonic() + 120
    # Wait for a real condition: the file row is loading and passages are going in.
    while not _passages_going_in(state):
        assert loader.poll() is None, "the load finished before it could be killed"
        assert time.monotonic() < deadline, "the load never started"
        time.sleep(0.05)
    parsers = _children(loader.pid)
    assert parsers, "the load runs its parser in a child process"
    loader.send_signal(signal.SIGKILL)
    loader.wait(timeout=30)
    # The parser dies with its parent instead of parsing on as an orphan.
    while any(Path(f"/proc/{pid}").exists() and not _zombie(pid) for pid in parsers):
        assert time.monotonic() < deadline, f"parser processes {parsers} outlived the load"
        time.sleep(0.05)

    # The source the killed load created is gone, as after a failed first load (issue 13,
    # item 13: it was left 'failed' with no file).
    listed = archivist(slow, "sources", "list", "--json")
    assert json.loads(listed.stdout) == []
    again = archivist(slow, "load", "directory", "--name", "big", "--input-files", str(manual))
    assert again.exit_code == 0 and "from 120 pages" in again.stdout


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _passages_going_in(db: Path) -> bool:
    """True once a loading file has reported progress (so passages are in Milvus)."""
    if not db.exists():
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute(
                "SELECT 1 FROM source_files WHERE status = 'loading'"
                " AND heartbeat > (julianday(loaded_at) - 2440587.5) * 86400.0 + 0.001"
            ).fetchone()
        except sqlite3.OperationalError:
            return False
    return row is not None


def test_configure_asks_when_interactive(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    answers = "\n".join([str(tmp_path / "state"), "http://milvus:19530", "local", "", "gpt-4o"])
    result = CliRunner().invoke(
        cli, ["configure", "--output", str(target)], input=answers + "\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "Milvus URI" in result.output and "LLM endpoint" in result.output
    text = target.read_text()
    assert 'uri = "http://milvus:19530"' in text and 'model = "gpt-4o"' in text
    assert "base_url" not in text  # left empty: not written, so the default applies


def test_configure_names_an_endpoints_embedding_model(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    answers = ["", "", "openai", "nomic-embed-text", "", ""]
    result = CliRunner().invoke(
        cli, ["configure", "--output", str(target)], input="\n".join(answers) + "\n", env=env
    )
    assert result.exit_code == 0, result.output
    assert "Embedding model [text-embedding-3-small]" in result.output
    assert '[embeddings]\nbackend = "openai"\nmodel = "nomic-embed-text"' in target.read_text()


def test_an_installation_keeps_the_model_its_sources_were_embedded_with(
    env: dict[str, str], tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 3)
    older = {**env, "ARCHIVIST_EMBEDDINGS_MODEL": "all-MiniLM-L6-v2"}
    load = ("load", "directory", "--name", "manual", "--input-files", str(manual))
    assert archivist(older, *load).exit_code == 0
    # Upgraded with the model left unset: the sources it has are still searched...
    found = archivist(env, "sources", "search", "--source", "manual", pdfs.manual_marker(2))
    assert found.exit_code == 0, found.output
    assert found.stdout.startswith("[1] manual.pdf p.2 (")
    shown = archivist(env, "sources", "show", "--json", "manual")
    assert json.loads(shown.stdout)["embedding_model"] == "all-MiniLM-L6-v2"
    # ...while a new data folder gets the fastest model.
    fresh = {**env, "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / "fresh")}
    assert archivist(fresh, *load).exit_code == 0
    shown = archivist(fresh, "sources", "show", "--json", "manual")
    assert json.loads(shown.stdout)["embedding_model"] == "all-MiniLM-L6-v2-q8f"


def test_configure_keeps_a_working_config_when_the_new_one_is_bad(
    env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "config.toml"
    target.write_text("[search]\ntop_k = 7\n")
    result = archivist(
        env,
        "configure",
        "--non-interactive",
        "--force",
        "--output",
        str(target),
        "--milvus-uri",
        "not-a-uri",
    )
    assert result.exit_code == EXIT_USAGE and "--milvus-uri" in result.output
    # The flag is to blame, not a variable nobody set.
    assert "ARCHIVIST_MILVUS_URI" not in result.output and "Traceback" not in result.output
    assert target.read_text() == "[search]\ntop_k = 7\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary left


def test_configure_without_a_terminal_points_to_non_interactive(
    env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "config.toml"
    result = archivist_process(env, "configure", "--output", str(target))
    assert result.returncode == EXIT_USAGE
    assert "Aborted" not in result.stderr + result.stdout
    assert "--non-interactive" in result.stderr
    assert not target.exists()


def test_configure_ignores_the_environment_when_checking_what_it_writes(
    env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "config.toml"
    result = archivist(
        {**env, "ARCHIVIST_MILVUS_URI": "not-a-uri"},
        "configure",
        "--non-interactive",
        "--output",
        str(target),
    )
    assert result.exit_code == 0, result.output
    assert target.exists()


def test_chat_with_an_unknown_persona_is_a_usage_error(env: dict[str, str]) -> None:
    result = archivist_process(env, "chat", "--persona", "nosuch")
    assert result.returncode == EXIT_USAGE
    assert "There is no persona called 'nosuch'" in result.stderr
    assert "memgpt_doc" in result.stderr and "Traceback" not in result.stderr
    human = archivist_process(env, "chat", "--human", "nobody")
    assert human.returncode == EXIT_USAGE and "There is no human called 'nobody'" in human.stderr


def test_chat_with_the_model_unreachable_answers_from_the_sources_and_exits_1(
    env: dict[str, str], tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4)
    # In real processes: Milvus Lite stays held by the process that opened it.
    archivist_process(env, "load", "directory", "--name", "manual", "--input-files", str(manual))
    key = "console:local:default"
    attached = archivist_process(env, "sources", "attach", "manual", "--conversation", key)
    assert attached.returncode == 0, attached.stderr
    down = {
        **env,
        "ARCHIVIST_LLM_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
        "ARCHIVIST_LLM_API_KEY": "sk-test",
        "ARCHIVIST_LLM_MAX_RETRIES": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        env={**os.environ, **down},
        input=pdfs.manual_marker(3) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == EXIT_FAILED, result.stderr
    assert "Search results (the language model is unreachable):" in result.stdout
    assert "manual.pdf p.3" in result.stdout
    assert "The language model is unreachable" in result.stdout
    assert "1 message was not answered in full" in result.stderr
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("name", ["", "   ", "x" * 5000, "red\x1b[31mtext"])
def test_a_source_name_that_cannot_be_used_is_a_usage_error(
    env: dict[str, str], tmp_path: Path, name: str
) -> None:
    doc = pdfs.make_pdf(tmp_path / "a.pdf", ["Names are checked before anything is opened."])
    result = archivist(env, "load", "directory", "--name", name, "--input-files", str(doc))
    assert result.exit_code == EXIT_USAGE
    assert "--name" in result.stderr and "\x1b" not in result.stderr
    assert not Path(env["ARCHIVIST_STORAGE_DATA_DIR"]).exists()  # refused before opening


def test_scopes_and_conversation_keys_are_checked(env: dict[str, str]) -> None:
    for args in (
        ["sources", "list", "--scope", "nonsense"],
        ["sources", "show", "x", "--scope", "nonsense"],
        ["sources", "search", "--source", "x", "--scope", "nonsense", "q"],
        ["sources", "attach", "x", "--conversation", "bogus"],
        ["sources", "detach", "x", "--conversation", "bogus"],
        ["chat", "--conversation", "bogus"],
    ):
        result = archivist(env, *args)
        assert result.exit_code == EXIT_USAGE, args
        assert "is not a workspace" in result.stderr or "is not a conversation key" in result.stderr


def test_attach_keeps_to_the_conversations_workspace(env: dict[str, str], tmp_path: Path) -> None:
    doc = pdfs.make_pdf(tmp_path / "a.pdf", ["Each workspace sees its own sources."])
    load = ("load", "directory", "--name", "guild", "--scope", "discord:1", str(doc))
    assert archivist(env, *load).exit_code == 0
    elsewhere = archivist(
        env, "sources", "attach", "guild", "--scope", "discord:1", "--conversation", "slack:2:C3"
    )
    assert elsewhere.exit_code == EXIT_NOT_FOUND
    assert "workspace discord:1" in elsewhere.stderr and "cannot see" in elsewhere.stderr
    # Without --scope, the name is resolved in the conversation's own workspace.
    home = archivist(env, "sources", "attach", "guild", "--conversation", "discord:1:10")
    assert home.exit_code == 0 and home.stdout.startswith("Attached 'guild'")
    off = archivist(env, "sources", "detach", "guild", "--conversation", "discord:1:10")
    assert off.stdout.startswith("Detached 'guild'")


def test_version_and_help_for_every_option(env: dict[str, str]) -> None:
    from importlib.metadata import version

    shown = archivist(env, "--version")
    assert shown.exit_code == 0 and shown.stdout.strip() == f"archivist {version('archivist-bot')}"
    undocumented = [
        f"{' '.join(path)} {param.opts[0]}"
        for path, command in _commands(cli, ())
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert undocumented == []


def _commands(
    command: click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_an_empty_search_says_so_without_pages(env: dict[str, str], tmp_path: Path) -> None:
    doc = pdfs.make_pdf(tmp_path / "a.pdf", ["Searching for nothing finds nothing."])
    assert archivist(env, "load", "directory", "--name", "a", str(doc)).exit_code == 0
    blank = archivist(env, "sources", "search", "--source", "a", "  ")
    assert blank.exit_code == EXIT_USAGE and "QUERY is empty" in blank.stderr
    beyond = archivist(env, "sources", "search", "--source", "a", "--page", "9", "nothing")
    assert beyond.exit_code == 0
    assert beyond.stdout.strip() == "No results on page 9: there is 1 page."
    assert "of 0" not in beyond.stdout


def test_sources_show_lists_failed_files_and_why(env: dict[str, str], tmp_path: Path) -> None:
    good = pdfs.make_pdf(tmp_path / "a.pdf", ["A file that loads."])
    assert archivist(env, "load", "directory", "--name", "s", str(good)).exit_code == 0
    login = pdfs.make_html_as_pdf(tmp_path / "login.pdf")
    locked = pdfs.make_encrypted_pdf(tmp_path / "locked.pdf")
    refused = archivist(env, "load", "directory", "--name", "s", str(login), str(locked))
    assert refused.exit_code == EXIT_FAILED
    shown = json.loads(archivist(env, "sources", "show", "s", "--json").stdout)
    assert shown["status"] == "ready" and shown["files"] == 1
    files = {f["name"]: f for f in shown["file_list"]}
    assert files["a.pdf"]["status"] == "ready"
    assert files["login.pdf"]["status"] == "failed" and "HTML" in files["login.pdf"]["error"]
    assert files["login.pdf"]["size"] == login.stat().st_size
    assert files["locked.pdf"]["status"] == "failed" and "password" in files["locked.pdf"]["error"]
    table = archivist(env, "sources", "show", "s")
    assert "login.pdf" in table.stdout and "locked.pdf" in table.stdout
    # A refused file stored nothing: the same files can be tried again at once.
    again = archivist(env, "load", "directory", "--name", "s", str(login))
    assert again.exit_code == EXIT_FAILED and "already" not in again.stderr


@pytest.mark.parametrize("where", ["/proc/nope", "under-a-file"])
def test_a_data_folder_that_cannot_be_made_is_one_sentence(
    env: dict[str, str], tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    folder = "/proc/nope" if where == "/proc/nope" else str(blocker / "data")
    result = archivist_process(
        {**env, "ARCHIVIST_STORAGE_DATA_DIR": folder}, "sources", "list", timeout=60
    )
    assert result.returncode == EXIT_UNAVAILABLE
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: The data folder {folder} cannot be")
    assert "ARCHIVIST_STORAGE_DATA_DIR" in line


def test_a_file_name_that_is_not_utf_8_loads_with_the_rest_of_the_folder(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    pdfs.make_pdf(folder / "a.pdf", ["Alpha document."])
    pdfs.make_pdf(folder / "z.pdf", ["Zulu document."])
    latin1 = os.path.join(os.fsencode(folder), b"caf\xe9.pdf")
    with open(latin1, "wb") as handle:
        handle.write(pdfs.pdf_bytes(["Latin-1 named document."]))
    result = archivist_process(env, "load", "directory", "--name", "n", "--input-dir", str(folder))
    assert result.returncode == 0, result.stderr
    assert "(3 files)" in result.stdout and "Traceback" not in result.stderr
    shown = json.loads(archivist_process(env, "sources", "show", "n", "--json").stdout)
    assert sorted(f["name"] for f in shown["file_list"]) == ["a.pdf", "caf\ufffd.pdf", "z.pdf"]


_FILL_THE_DISK = """
mount -t tmpfs -o size=320k tmpfs "$SMALL" || exit 99
run() {
  step=$1; shift
  "$PY" -m bot "$@" >"$OUT/$step.out" 2>"$OUT/$step.err"; echo $? >"$OUT/$step.rc"
}
run load load directory --name big --input-files "$PDF"
run full sources list --json
mount -o remount,size=64m "$SMALL"
run freed sources list --json
run again load directory --name big --input-files "$PDF"
"""


@pytest.mark.timeout(600)
def test_a_disk_that_fills_during_a_load_is_one_sentence_and_rolled_back_once_freed(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The data folder on a 320 KB tmpfs of its own (a mount namespace, no root needed): the
    state database grows past it while the load writes, then it is given room again."""
    manual = pdfs.make_manual_pdf(tmp_path / "big.pdf", 120)
    small, results = tmp_path / "small", tmp_path / "results"
    small.mkdir()
    results.mkdir()
    variables = {
        **env,
        "ARCHIVIST_STORAGE_DATA_DIR": str(small / "data"),
        "ARCHIVIST_MILVUS_URI": str(tmp_path / "lite" / "milvus.db"),
        "ARCHIVIST_INGEST_PAGES_PER_TASK": "2",
        "SMALL": str(small),
        "OUT": str(results),
        "PY": sys.executable,
        "PDF": str(manual),
    }
    done = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", _FILL_THE_DISK],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    def step(name: str) -> tuple[int, str, str]:
        return (
            int((results / f"{name}.rc").read_text()),
            (results / f"{name}.out").read_text(),
            (results / f"{name}.err").read_text(),
        )

    code, _, errors = step("load")
    assert code == EXIT_UNAVAILABLE, errors
    assert said(errors) == [
        "error: The disk holding the state database (SQLite) is full: free some space, then"
        " try again."
    ]
    # While the disk is full, reading still works: the interrupted load waits for room.
    code, listed, errors = step("full")
    assert code == 0, errors
    # The load had begun: its source is there, still loading (hidden from searches).
    assert [(s["name"], s["status"]) for s in json.loads(listed)] == [("big", "loading")]
    # Given room, the next command rolls the load back: nothing of it is left.
    code, listed, errors = step("freed")
    assert code == 0 and json.loads(listed) == [], errors
    code, loaded, errors = step("again")
    assert code == 0 and "from 120 pages" in loaded, errors


def test_tables_keep_names_whole_in_80_columns(env: dict[str, str], tmp_path: Path) -> None:
    """The names a user types next are never cut; reasons go below the table, whole."""
    name = "operations-handbook-for-the-north-sea-platforms"
    good = pdfs.make_pdf(tmp_path / "maintenance-schedule-2026-offshore.pdf", ["A schedule."])
    login = pdfs.make_html_as_pdf(tmp_path / "login-page-saved-as-a-pdf-by-mistake.pdf")
    narrow = {**env, "COLUMNS": "80"}
    archivist(narrow, "load", "directory", "--name", name, str(good))
    archivist(narrow, "load", "directory", "--name", name, str(login))
    listed = archivist(narrow, "sources", "list")
    assert name in listed.stdout, listed.stdout
    shown = archivist(narrow, "sources", "show", name)
    assert "maintenance-schedule-2026-offshore.pdf" in shown.stdout, shown.stdout
    assert "login-page-saved-as-a-pdf-by-mistake.pdf" in shown.stdout
    table = shown.stdout.splitlines()[1:5]  # after the source's line: header, rule, 2 files
    assert max(len(line) for line in table) <= 80, table
    reason = json.loads(archivist(env, "sources", "show", name, "--json").stdout)["file_list"][1]
    assert " ".join(reason["error"].split()) in " ".join(shown.stdout.split())


def test_a_query_that_starts_with_a_dash_is_searched(env: dict[str, str], tmp_path: Path) -> None:
    doc = pdfs.make_pdf(
        tmp_path / "vg.pdf",
        ["Run valgrind --leak-check=full to list each leak. Other text about suppressions."],
    )
    archivist(env, "load", "directory", "--name", "vg", "--input-files", str(doc))
    found = archivist(env, "sources", "search", "--source", "vg", "--json", "--leak-check=full")
    assert found.exit_code == 0, found.output
    [result] = json.loads(found.stdout)
    assert "--leak-check=full" in result["text"]
    assert (result["page"], result["last_page"]) == (1, 1)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["sources", "--help"]])
def test_help_and_version_load_no_platform_store_or_model_library(args: list[str]) -> None:
    # What made `archivist --help` take seconds: every command imported everything.
    probe = (
        "import sys\n"
        "from bot.cli import cli\n"
        "try:\n"
        f"    cli({args!r}, standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(result.stdout.split())
    heavy = {"discord", "slack_bolt", "pymilvus", "milvus_lite", "onnxruntime", "pandas"}
    assert "click" in loaded and not loaded & (heavy | {"openai", "pypdf", "numpy", "grpc"})
