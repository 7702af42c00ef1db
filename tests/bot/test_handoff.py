"""Commands beside a running bot: the bot holds the Milvus Lite file, so ``archivist load``,
``sources search`` and ``sources delete`` hand it their work over its admin endpoint."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
from pathlib import Path

import aiohttp

from bot.admin import admin_file
from tests import pdfs
from tests.bot.test_run import archivist, on_discord, run_env, start
from tests.fake_discord import FakeDiscord


async def status_of(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={}, headers=headers) as response,
    ):
        return response.status


async def test_load_search_and_delete_beside_a_running_bot_are_done_by_the_bot(
    tmp_path: Path, model_cache: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 40)
    broken = pdfs.make_truncated_pdf(tmp_path / "broken.pdf")
    async with FakeDiscord() as fake:
        fake.add_channel(fake.add_guild("Library"), "docs")
        env = run_env(
            tmp_path, model_cache, **on_discord(fake), ARCHIVIST_INGEST_PAGES_PER_TASK="4"
        )
        bot = await start(env)
        url = (await bot.line(r"admin endpoint for local commands on (http://\S+)"))[1]
        await bot.line(r"connected to Discord as Archivist")
        address = admin_file(tmp_path / "data")
        assert stat.S_IMODE(address.stat().st_mode) == 0o600  # the token: its owner's only
        token = json.loads(address.read_text())["token"]

        load = ("load", "directory", "--name", "manual", "--input-files", str(manual))
        code, out, err = await archivist(env, *load, str(broken))
        assert code == 1, err  # one file failed, as in a load of its own
        assert "from 40 pages (1 file) into source 'manual'; 1 failed" in out
        assert f"The bot running here (pid {bot.process.pid}) does this." in err
        assert "manual.pdf (file 1 of 2): 40/40 pages (100%)" in err  # progress, streamed
        assert "error: 'broken.pdf'" in err

        marker = pdfs.manual_marker(3)
        code, out, err = await archivist(env, "sources", "search", "--source", "manual", marker)
        assert code == 0, err
        assert out.startswith("[1] manual.pdf p.3 (")
        code, out, err = await archivist(env, "sources", "search", "--source", "nope", "x")
        assert code == 3 and "error: No such source: 'nope'." in err

        assert await status_of(f"{url}/delete", None) == 401
        assert await status_of(f"{url}/delete", token[::-1]) == 401

        code, out, err = await archivist(env, "sources", "delete", "manual", "--yes")
        assert code == 0, err
        assert out.startswith("Deleted source 'manual' (")
        assert await bot.stop() == 0
    assert not address.exists()  # a stopped bot leaves no address behind
    code, out, err = await archivist(env, "sources", "list", "--json")
    assert code == 0 and json.loads(out) == []


async def test_a_handed_over_load_interrupted_by_ctrl_c_is_rolled_back_in_the_bot(
    tmp_path: Path, model_cache: Path
) -> None:
    # Long enough that Ctrl-C at its first progress line lands well before its end.
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 1000)
    async with FakeDiscord() as fake:
        fake.add_channel(fake.add_guild("Library"), "docs")
        env = run_env(
            tmp_path, model_cache, **on_discord(fake), ARCHIVIST_INGEST_PAGES_PER_TASK="2"
        )
        bot = await start(env)
        await bot.line(r"connected to Discord as Archivist")
        # As from a terminal: a shell's background jobs (a CI script's, say) start with SIGINT
        # ignored, which the command would inherit and rightly keep; Ctrl-C is what is tested.
        ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            loading = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot", "load", "directory", "--name", "manual"),
                *("--input-files", str(manual)),
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        finally:
            signal.signal(signal.SIGINT, ignored)
        assert loading.stderr is not None
        said = [await loading.stderr.readline()]
        while b"pages (" not in said[-1]:  # until the bot has reported progress
            said.append(await loading.stderr.readline())
        loading.send_signal(signal.SIGINT)
        said.append(await loading.stderr.read())
        assert await asyncio.wait_for(loading.wait(), 60) != 0, b"".join(said).decode()
        await bot.line(r"admin load of manual: the command went away, load stopped")
        code, out, err = await archivist(env, "sources", "list", "--json")
        assert code == 0, err
        assert [s for s in json.loads(out) if s["status"] == "ready"] == []
        assert await bot.stop() == 0


async def test_an_address_left_by_a_killed_bot_is_passed_over(
    tmp_path: Path, model_cache: Path
) -> None:
    env = run_env(tmp_path, model_cache)
    data = tmp_path / "data"
    data.mkdir()
    admin_file(data).write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "t", "pid": 1}))
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 3)
    code, out, err = await archivist(
        env, "load", "directory", "--name", "manual", "--input-files", str(manual)
    )
    assert code == 0, err
    assert "from 3 pages (1 file) into source 'manual'" in out
    assert "The bot running here" not in err  # it loaded in its own process
