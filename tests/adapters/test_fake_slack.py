"""The fake Slack works with the real slack-bolt and slack_sdk, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fake_slack import Delivery, FakeSlack, Mode

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TOPICS = ["astronomy", "botany", "history"]


@dataclass
class Seen:
    """An event as a listener received it, with the retry headers bolt gave it."""

    type: str
    event_id: str | None
    retry_num: str | None
    retry_reason: str | None
    event: dict[str, Any]


class StubApp:
    """A bolt app using the Slack features the Archivist adapter relies on."""

    def __init__(self, fake: FakeSlack) -> None:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)
        # bolt copies these into the client it builds for each request.
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
        # No token= as well: bolt would log that the client's token wins.
        self.app = AsyncApp(client=client, signing_secret=fake.signing_secret)
        self.seen: list[Seen] = []
        self._seen_changed = asyncio.Condition()
        app = self.app

        @app.event("app_mention")
        async def on_mention(
            event: dict[str, Any], body: dict[str, Any], request: AsyncBoltRequest, say: Any
        ) -> None:
            await self._record(event, body, request)
            question = event["text"].split(">", 1)[-1].strip()
            await say(text=f"pong: {question}", thread_ts=event.get("thread_ts") or event["ts"])

        @app.event("message")
        async def on_message(
            event: dict[str, Any],
            body: dict[str, Any],
            request: AsyncBoltRequest,
            client: AsyncWebClient,
        ) -> None:
            await self._record(event, body, request)
            if event.get("subtype") != "file_share":
                return
            async with aiohttp.ClientSession() as session:
                for file in event["files"]:
                    headers = {"Authorization": f"Bearer {client.token}"}
                    async with session.get(file["url_private_download"], headers=headers) as got:
                        data = await got.read()
                        kind = got.content_type
                    await client.chat_postMessage(
                        channel=event["channel"],
                        thread_ts=event["ts"],
                        text=f"{file['name']}: {len(data)} bytes, {kind}",
                    )

        @app.event("file_shared")
        async def on_file_shared(
            event: dict[str, Any], body: dict[str, Any], request: AsyncBoltRequest
        ) -> None:
            await self._record(event, body, request)

        @app.command("/ask")
        async def ask(ack: Any, respond: Any, command: dict[str, Any]) -> None:
            await ack(f"Looking up {command['text']}…")
            await respond(text=f"answer: {command['text']}", response_type="in_channel")

        @app.command("/form")
        async def form(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            view = {
                "type": "modal",
                "callback_id": "upload",
                "title": {"type": "plain_text", "text": "Upload"},
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Pick a file"}}],
            }
            await client.views_open(trigger_id=body["trigger_id"], view=view)

        @app.action("topic")
        async def choose(ack: Any, body: dict[str, Any], respond: Any) -> None:
            await ack()
            chosen = body["actions"][0]["selected_option"]["value"]
            await respond(replace_original=True, text=f"topic: {chosen}")

    async def _record(
        self, event: dict[str, Any], body: dict[str, Any], request: AsyncBoltRequest
    ) -> None:
        retry_num = request.headers.get("x-slack-retry-num", [None])[0]
        retry_reason = request.headers.get("x-slack-retry-reason", [None])[0]
        seen = Seen(event["type"], body.get("event_id"), retry_num, retry_reason, event)
        async with self._seen_changed:
            self.seen.append(seen)
            self._seen_changed.notify_all()

    async def wait_seen(self, predicate: Callable[[Seen], bool], count: int = 1) -> list[Seen]:
        """The events the listeners received that match, once there are ``count``."""

        def found() -> list[Seen]:
            matching = [s for s in self.seen if predicate(s)]
            return matching if len(matching) >= count else []

        async with self._seen_changed:
            result: list[Seen] = await asyncio.wait_for(self._seen_changed.wait_for(found), 10)
            return result


@contextlib.asynccontextmanager
async def running(app: AsyncApp, fake: FakeSlack) -> AsyncIterator[None]:
    """Connect ``app`` to the fake over its transport until exit."""
    if fake.mode == "socket":
        # The handler's SocketModeClient calls apps.connections.open through
        # app.client, so the client's base_url decides where it connects.
        handler = AsyncSocketModeHandler(app, fake.app_token)
        await handler.connect_async()
        try:
            await fake.wait_for(lambda: fake.live_sockets, what="the app's connection")
            yield
        finally:
            await handler.close_async()
    else:
        runner = web.AppRunner(app.web_app(path="/slack/events"))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        fake.events_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        try:
            yield
        finally:
            await runner.cleanup()


@dataclass
class World:
    fake: FakeSlack
    stub: StubApp
    general: str
    alice: str


@pytest.fixture(params=["socket", "http"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with FakeSlack(mode=request.param) as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice", display_name="Alice L.")
        fake.add_command("/ask", description="Ask the library")
        fake.add_command("/form")
        stub = StubApp(fake)
        async with running(stub.app, fake):
            yield World(fake, stub, general, alice)
        assert fake.unknown_methods == []
        assert fake.errors == []


async def test_an_app_mention_is_answered_in_its_thread(world: World) -> None:
    fake = world.fake
    asked = await fake.mention(world.general, world.alice, "what is a nebula?")
    assert asked.ts is not None
    reply = await fake.wait_for(lambda: fake.bot_messages(world.general, thread_ts=asked.ts))
    assert reply[0]["text"] == "pong: what is a nebula?"
    assert reply[0]["thread_ts"] == asked.ts
    parent = fake.message(asked.ts)
    assert parent["reply_count"] == 1 and parent["user"] == world.alice
    assert f"<@{fake.bot_user_id}>" in parent["text"]
    await asked.wait_ack()
    assert asked.acked
    # Slack sends the plain message event too, under its own event id.
    (message,) = asked.companions
    seen = await world.stub.wait_seen(lambda s: s.type == "message")
    assert seen[0].event_id == message.event_id != asked.event_id
    assert seen[0].event["ts"] == asked.ts and seen[0].event["channel_type"] == "channel"
    # bolt caches auth.test once answered: the two first events, handled
    # concurrently, may each call it, and nothing after them does.
    assert 1 <= len(fake.calls_to("auth.test")) <= 2
    post = fake.calls_to("chat.postMessage")[0]
    assert post.headers["Authorization"] == f"Bearer {fake.bot_token}"
    assert post.args["thread_ts"] == asked.ts


async def test_a_slash_command_is_acked_then_answered_later(world: World) -> None:
    fake = world.fake
    delivery = await fake.command("ask", "comets", user=world.alice, channel=world.general)
    await delivery.wait_ack()
    assert delivery.acked
    assert delivery.ack_payload == {"text": "Looking up comets…"}
    assert [m["text"] for m in fake.ephemeral(world.alice)] == ["Looking up comets…"]
    post = await delivery.response()
    assert post.text == "answer: comets" and post.response_type == "in_channel"
    assert post.replace_original is None
    assert [m["text"] for m in fake.bot_messages(world.general)] == ["answer: comets"]


async def test_a_command_opens_a_modal_with_its_trigger(world: World) -> None:
    fake = world.fake
    delivery = await fake.command("/form", user=world.alice, channel=world.general)
    view = await fake.wait_for(lambda: fake.views)
    assert view[0]["callback_id"] == "upload" and view[0]["user"] == world.alice
    assert fake.calls_to("views.open")[0].args["trigger_id"] == delivery.payload["trigger_id"]
    await delivery.wait_ack()
    assert delivery.acked and delivery.ack_payload is None
    assert fake.ephemeral(world.alice) == []


async def test_a_block_actions_select_replaces_the_message(world: World) -> None:
    fake = world.fake
    options = [{"text": {"type": "plain_text", "text": t}, "value": t} for t in TOPICS]
    select = {"type": "static_select", "action_id": "topic", "options": options}
    blocks = [
        {
            "type": "section",
            "block_id": "pick",
            "text": {"type": "mrkdwn", "text": "Pick a topic"},
            "accessory": select,
        }
    ]
    posted = await world.stub.app.client.chat_postMessage(
        channel=world.general, text="Pick a topic", blocks=blocks
    )
    ts = posted["ts"]
    delivery = await fake.block_action(
        world.alice, world.general, action_id="topic", selected_option="botany", message_ts=ts
    )
    action = delivery.payload["actions"][0]
    assert action["type"] == "static_select" and action["block_id"] == "pick"
    assert action["selected_option"] == options[1]
    post = await delivery.response()
    assert post.replace_original is True
    assert [version["text"] for version in fake.updates(ts)] == ["topic: botany"]
    assert fake.message(ts)["text"] == "topic: botany"
    await delivery.wait_ack()
    assert delivery.acked


async def test_a_shared_file_is_downloaded_with_the_bot_token(world: World) -> None:
    fake = world.fake
    report = fake.add_file(PDF, "report.pdf", user=world.alice)
    shared = await fake.post_message(world.general, world.alice, "here", files=[report])
    assert shared.event["subtype"] == "file_share"
    assert shared.event["files"][0]["id"] == report["id"]
    assert [c.event["type"] for c in shared.companions] == ["file_shared"]
    reply = await fake.wait_for(lambda: fake.bot_messages(world.general, thread_ts=shared.ts))
    assert reply[0]["text"] == f"report.pdf: {len(PDF)} bytes, application/pdf"
    (download,) = fake.downloads
    assert download.authorization == f"Bearer {fake.bot_token}"
    assert download.served == "file" and download.file_id == report["id"]
    await world.stub.wait_seen(lambda s: s.type == "file_shared")


async def test_a_rate_limited_post_is_retried_and_lands_once(world: World) -> None:
    fake = world.fake
    # Retry-After: 0 still sleeps up to 1 s: slack_sdk adds random() to it.
    fake.fail_next("chat.postMessage", retry_after=0)
    asked = await fake.mention(world.general, world.alice, "again")
    await fake.wait_for(lambda: fake.bot_messages(world.general))
    posts = fake.calls_to("chat.postMessage")
    assert [(p.status, (p.response or {}).get("error")) for p in posts] == [
        (429, "ratelimited"),
        (200, None),
    ]
    assert len(fake.bot_messages(world.general, thread_ts=asked.ts)) == 1


async def test_a_retried_event_reaches_the_app_with_its_retry_headers(world: World) -> None:
    fake, stub = world.fake, world.stub
    first = await fake.post_message(world.general, world.alice, "hello")
    (seen,) = await stub.wait_seen(lambda s: s.event_id == first.event_id)
    # bolt turns Socket Mode's retry_attempt 0 / retry_reason "" into headers,
    # so a first delivery carries x-slack-retry-num "0" there but none over HTTP.
    expected_first = ("0", "") if fake.mode == "socket" else (None, None)
    assert (seen.retry_num, seen.retry_reason) == expected_first
    await fake.redeliver(first, 1)
    retried = await stub.wait_seen(lambda s: s.event_id == first.event_id, count=2)
    assert (retried[1].retry_num, retried[1].retry_reason) == ("1", "http_timeout")
    duplicate = await fake.redeliver(first, 0, new_event_id=True)
    (again,) = await stub.wait_seen(lambda s: s.event_id == duplicate.event_id)
    assert duplicate.event_id != first.event_id
    assert (
        again.event["ts"] == first.ts
        and again.event["client_msg_id"] == first.event["client_msg_id"]
    )


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_the_bots_own_messages_come_back_and_bolt_drops_them(mode: Mode) -> None:
    async with FakeSlack(mode=mode, echo_bot_messages=True) as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice")
        stub = StubApp(fake)
        async with running(stub.app, fake):
            asked = await fake.mention(general, alice, "first", with_message=False)
            await fake.wait_for(lambda: fake.bot_messages(general))
            followup = await fake.mention(
                general, alice, "second", thread_ts=asked.ts, with_message=False
            )
            assert followup.event["thread_ts"] == asked.ts
            assert followup.event["parent_user_id"] == alice
            await fake.wait_for(lambda: len(fake.bot_messages(general)) == 2)

            def acked_echoes() -> list[Delivery]:
                echoes = [d for d in fake.deliveries if d.event.get("user") == fake.bot_user_id]
                return echoes if len(echoes) == 2 and all(d.acked for d in echoes) else []

            echoes = await fake.wait_for(acked_echoes)
        assert len(echoes) == 2 and all(e.event["bot_id"] == fake.bot_id for e in echoes)
        # IgnoringSelfEvents acked them without calling any listener.
        assert [s.event["text"] for s in stub.seen] == [
            f"<@{fake.bot_user_id}> first",
            f"<@{fake.bot_user_id}> second",
        ]
        assert [m["thread_ts"] for m in fake.bot_messages(general)] == [asked.ts, asked.ts]
        assert fake.message(asked.ts)["reply_count"] == 3
        assert fake.errors == []


async def test_requests_with_a_bad_signature_or_an_old_timestamp_are_refused() -> None:
    async with FakeSlack(mode="http") as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice")
        stub = StubApp(fake)
        async with running(stub.app, fake):
            forged = await fake.mention(
                general, alice, "hi", bad_signature=True, with_message=False
            )
            stale = await fake.mention(
                general, alice, "hi", stale_timestamp=True, with_message=False
            )
            for delivery in (forged, stale):
                await delivery.wait_ack()
                assert delivery.status == 401
                assert delivery.ack_payload is None
            good = await fake.mention(general, alice, "hi", with_message=False)
            await good.wait_ack()
            assert good.status == 200
            await fake.wait_for(lambda: fake.bot_messages(general))
        assert len(stub.seen) == 1
        assert len(fake.calls_to("chat.postMessage")) == 1
        assert (
            int(stale.request_headers["X-Slack-Request-Timestamp"])
            < int(good.request_headers["X-Slack-Request-Timestamp"]) - 300
        )


async def test_bolt_over_http_loses_a_command_whose_text_says_payload() -> None:
    # slack_bolt.request.internals.parse_body takes any form body containing
    # "payload" for an interactive payload=... body, finds no such field and
    # parses it as {}. If this fails after a bolt upgrade, the bug is fixed.
    async with FakeSlack(mode="http") as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice")
        fake.add_command("/ask")
        async with running(StubApp(fake).app, fake):
            lost = await fake.command("/ask", "what is a payload", user=alice, channel=general)
            await lost.wait_ack()
            kept = await fake.command("/ask", "what is a load", user=alice, channel=general)
            await kept.wait_ack()
        assert (lost.status, lost.body) == (404, '{"error": "unhandled request"}')
        assert kept.status == 200


async def test_a_refreshed_socket_mode_connection_reconnects() -> None:
    async with FakeSlack(mode="socket") as fake:
        general = fake.add_channel("general")
        alice = fake.add_user("alice")
        stub = StubApp(fake)
        async with running(stub.app, fake):
            await fake.disconnect_socket()
            assert fake.socket_connections == 2
            assert len(fake.calls_to("apps.connections.open")) == 2
            opened = fake.calls_to("apps.connections.open")[0]
            assert opened.headers["Authorization"] == f"Bearer {fake.app_token}"
            asked = await fake.mention(general, alice, "still there?", with_message=False)
            await fake.wait_for(lambda: fake.bot_messages(general, thread_ts=asked.ts))
            await asked.wait_ack()
            assert asked.acked
        assert fake.unexpected_acks == [] and fake.errors == []


async def test_the_file_server_wants_the_bot_token() -> None:
    async with FakeSlack() as fake, aiohttp.ClientSession() as session:
        report = fake.add_file(PDF, "report.pdf")
        html = fake.add_file(PDF, "broken.pdf", serve_html=True)
        good = {"Authorization": f"Bearer {fake.bot_token}"}
        attempts = [
            (report["url_private"], {}),
            (report["url_private"], {"Authorization": "Bearer xoxb-wrong"}),
            (report["url_private_download"], good),
            (html["url_private_download"], good),
        ]
        answers = []
        for url, headers in attempts:
            async with session.get(url, headers=headers) as response:
                answers.append((response.status, response.content_type, await response.read()))
        assert [(status, kind) for status, kind, _ in answers] == [
            (200, "text/html"),
            (200, "text/html"),
            (200, "application/pdf"),
            (200, "text/html"),
        ]
        assert answers[2][2] == PDF and answers[0][2].startswith(b"<!DOCTYPE html>")
        assert [d.served for d in fake.downloads] == ["login", "login", "file", "login"]
        assert [d.authorization for d in fake.downloads][:2] == [None, "Bearer xoxb-wrong"]


async def test_the_web_api_checks_tokens_and_records_calls() -> None:
    async with FakeSlack() as fake:
        general = fake.add_channel("general")
        admin = fake.add_user("root", admin=True, owner=True, display_name="Root")
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base)

        auth = await client.auth_test()
        assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == (
            fake.bot_user_id,
            fake.bot_id,
            fake.team_id,
        )
        user = (await client.users_info(user=admin))["user"]
        assert user["is_admin"] and user["is_owner"] and not user["is_bot"]
        assert user["profile"]["display_name"] == "Root"
        channel = (await client.conversations_info(channel=general))["channel"]
        assert channel["name"] == "general" and channel["is_member"]

        parent = await client.chat_postMessage(channel=general, text="first")
        reply = await client.chat_postMessage(
            channel=general, text="second", thread_ts=parent["ts"]
        )
        await client.chat_update(channel=general, ts=parent["ts"], text="first, edited")
        await client.reactions_add(channel=general, timestamp=reply["ts"], name="eyes")
        link = await client.chat_getPermalink(channel=general, message_ts=reply["ts"])
        assert link["permalink"].endswith(f"?thread_ts={parent['ts']}&cid={general}")
        history = await client.conversations_history(channel=general)
        assert [m["text"] for m in history["messages"]] == ["first, edited"]
        assert history["messages"][0]["reply_count"] == 1
        replies = await client.conversations_replies(channel=general, ts=parent["ts"])
        assert [m["text"] for m in replies["messages"]] == ["first, edited", "second"]
        assert fake.reactions(reply["ts"]) == {"eyes": [fake.bot_user_id]}
        await client.chat_delete(channel=general, ts=reply["ts"])
        assert fake.is_deleted(reply["ts"])
        dm = (await client.conversations_open(users=admin))["channel"]["id"]
        direct = await client.chat_postMessage(channel=admin, text="hello in private")
        assert direct["channel"] == dm and fake.bot_messages(dm)[0]["text"] == "hello in private"
        ephemeral = await client.chat_postEphemeral(channel=general, user=admin, text="psst")
        assert fake.ephemeral(admin)[0]["ts"] == ephemeral["message_ts"]

        await client.reactions_add(channel=general, timestamp=parent["ts"], name="eyes")
        errors = []
        for call in (
            AsyncWebClient(token="xoxb-wrong", base_url=fake.api_base).auth_test(),
            AsyncWebClient(token=fake.app_token, base_url=fake.api_base).chat_postMessage(
                channel=general, text="x"
            ),
            client.apps_connections_open(app_token=fake.bot_token),
            client.reactions_add(channel=general, timestamp=parent["ts"], name="eyes"),
            client.chat_postMessage(channel=general, text="x" * 40_001),
            client.chat_postMessage(channel="C0NOWHERE", text="x"),
            client.api_call("pins.add", params={"channel": general}),
        ):
            with pytest.raises(SlackApiError) as raised:
                await call
            errors.append(raised.value.response["error"])
        assert errors == [
            "invalid_auth",
            "not_allowed_token_type",
            "not_allowed_token_type",
            "already_reacted",
            "msg_too_long",
            "channel_not_found",
            "unknown_method",
        ]
        assert fake.unknown_methods == ["pins.add"]

        # slack_sdk 3.48 appends the slash a base URL lacks, so both spellings work.
        slashless = AsyncWebClient(token=fake.bot_token, base_url=fake.api_base.rstrip("/"))
        assert (await slashless.auth_test())["ok"]
        assert fake.errors == []
