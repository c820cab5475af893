"""The Python bindings against a relay on loopback: a visitor and an agent send and receive,
exchange attachments, an agent is removed, a client is backed up and restored, and bad input
gives typed errors with the client's stable codes."""

import asyncio
import os
import queue

import pytest

import sotto
from conftest import EVENT_WAIT_MS, next_matching, texts

# A valid 24-word phrase (the all-zero BIP-39 entropy), standing in for an owner's words.
RECOVERY_WORDS = " ".join(["abandon"] * 23 + ["art"])
# Cheap Argon2id for tests; applications leave `kdf` as None (the recommended default).
CHEAP_KDF = sotto.KdfSettings(memory_kib=64, iterations=1, parallelism=1)


def run(coroutine):
    return asyncio.run(coroutine)


def is_message_from(conversation, sender):
    def check(event):
        return (isinstance(event, sotto.Event.MESSAGE)
                and event.conversation_id == conversation
                and event.message.sender == sender)
    return check


def test_visitor_and_agent_exchange_messages_over_push(world):
    async def scenario():
        agent, visitor = world.agent.client, world.visitor.client
        agent_events, visitor_events = agent.subscribe(), visitor.subscribe()
        agent.start()
        visitor.start()
        try:
            await next_matching(agent_events, lambda e: isinstance(e, sotto.Event.CONNECTED))
            await next_matching(visitor_events, lambda e: isinstance(e, sotto.Event.CONNECTED))

            sent = await visitor.send_text(world.conversation, "hello, I need help")
            assert sent.conversation_id == world.conversation
            assert sent.cursor is not None, "online: the relay stored it at once"

            event = await next_matching(agent_events, is_message_from(world.conversation, visitor.device_id()))
            assert event.message.body == sotto.MessageBody.TEXT(text="hello, I need help")
            assert event.message.kind == sotto.MessageType.TEXT
            assert not event.message.mine
            assert event.message.cursor == sent.cursor

            await agent.send_text(world.conversation, "hi, how can I help?")
            event = await next_matching(visitor_events, is_message_from(world.conversation, agent.device_id()))
            assert event.message.body.text == "hi, how can I help?"

            assert texts(await agent.history(world.conversation, None, 100)) == [
                "hello, I need help", "hi, how can I help?"]
            assert texts(await visitor.history(world.conversation, None, 100)) == [
                "hello, I need help", "hi, how can I help?"]
            # Paging: the last message before the second one's cursor.
            newest = await visitor.history(world.conversation, None, 1)
            older = await visitor.history(world.conversation, newest[0].cursor, 10)
            assert texts(older) == ["hello, I need help"]
            assert await agent.conversations() == [world.conversation]
            assert await agent.conversation_team(world.conversation) == world.team.team_id
        finally:
            agent.stop()
            visitor.stop()
        assert not agent.is_started()

    run(scenario())


def test_messages_arrive_by_sync_and_through_a_listener(world):
    class Collector(sotto.EventListener):
        def __init__(self):
            self.events = queue.Queue()

        def on_event(self, event):
            self.events.put(event)

    async def scenario():
        collector = Collector()
        handle = world.agent.client.listen(collector)
        assert handle.is_active()
        await world.visitor.client.send_text(world.conversation, "by sync")
        await world.agent.client.sync()
        seen = []
        while True:
            event = collector.events.get(timeout=EVENT_WAIT_MS / 1000)
            seen.append(event)
            if isinstance(event, sotto.Event.MESSAGE):
                assert event.message.body.text == "by sync"
                break
        assert any(isinstance(e, sotto.Event.CONVERSATION_STARTED)
                   and e.conversation_id == world.conversation for e in seen)
        handle.cancel()
        assert not handle.is_active()

    run(scenario())


def test_attachments_round_trip(world):
    async def scenario():
        data = os.urandom(70_000)
        await world.visitor.client.send_attachment(world.conversation, "scan.pdf", "application/pdf", data)
        await world.agent.client.sync()
        [message] = await world.agent.client.history(world.conversation, None, 10)
        assert message.kind == sotto.MessageType.ATTACHMENT
        assert isinstance(message.body, sotto.MessageBody.FILE)
        attachment = message.body.attachment
        assert (attachment.name(), attachment.mime_type(), attachment.size()) == (
            "scan.pdf", "application/pdf", len(data))
        assert await world.agent.client.fetch_attachment(attachment) == data

    run(scenario())


def test_removed_agent_reads_nothing_new(world):
    async def scenario():
        agent, owner, visitor = world.agent.client, world.owner.client, world.visitor.client
        await visitor.send_text(world.conversation, "before removal")
        await agent.sync()
        assert texts(await agent.history(world.conversation, None, 10)) == ["before removal"]
        assert await agent.membership(world.team.team_id) == sotto.Membership(
            member_id=world.agent_member, role=sotto.TeamRole.AGENT)

        # Online, the agent is pushed the link that removes it (a removed device can no longer
        # list the chain).
        events = agent.subscribe()
        agent.start()
        try:
            await next_matching(events, lambda e: isinstance(e, sotto.Event.CONNECTED))
            await owner.remove_member(world.team.team_id, world.agent_member)
            await next_matching(events, lambda e: isinstance(e, sotto.Event.REMOVED_FROM_TEAM)
                                and e.team_id == world.team.team_id)
        finally:
            agent.stop()
        assert world.agent_member not in [m.member_id for m in await owner.members(world.team.team_id)]

        # The visitor learns of the rotation and opens a new epoch; the agent reads none of it.
        await visitor.sync()
        sent = await visitor.send_text(world.conversation, "after removal")
        assert sent.epoch == 1
        await agent.sync()
        assert await agent.membership(world.team.team_id) is None
        with pytest.raises(sotto.SottoError.Relay) as error:
            await agent.sync_conversation(world.conversation)
        assert (error.value.code, error.value.status) == ("relay_forbidden", 403)
        assert texts(await agent.history(world.conversation, None, 10)) == ["before removal"]

        await owner.sync()
        assert texts(await owner.history(world.conversation, None, 10)) == [
            "before removal", "after removal"]

    run(scenario())


def test_backup_and_restore(world, devices):
    async def scenario():
        visitor = world.visitor
        await visitor.client.send_text(world.conversation, "kept in the backup")
        await world.agent.client.sync()
        await world.agent.client.send_text(world.conversation, "reply before the backup")
        await visitor.client.sync()

        by_passphrase = await visitor.client.export_backup(
            sotto.BackupSecret.PASSPHRASE(passphrase="correct horse", kdf=CHEAP_KDF))
        by_words = await visitor.client.export_backup(sotto.BackupSecret.RECOVERY_WORDS(words=RECOVERY_WORDS))
        blob_id = await visitor.client.upload_backup(by_passphrase, [])
        assert len(blob_id) == 32

        with pytest.raises(sotto.SottoError.Backup) as error:
            await sotto.restore_client(devices.path(), sotto.new_store_key(), by_passphrase,
                                       sotto.BackupSecret.PASSPHRASE(passphrase="wrong", kdf=None))
        assert error.value.code == "backup_decryption_failed"

        for blob, secret in [
            (by_passphrase, sotto.BackupSecret.PASSPHRASE(passphrase="correct horse", kdf=None)),
            (by_words, sotto.BackupSecret.RECOVERY_WORDS(words=RECOVERY_WORDS.upper())),
        ]:
            restored = await sotto.restore_client(devices.path(), sotto.new_store_key(), blob, secret)
            assert restored.device_id() == visitor.client.device_id()
            assert restored.device_kind() == sotto.ClientKind.VISITOR
            assert texts(await restored.history(world.conversation, None, 10)) == [
                "kept in the backup", "reply before the backup"]

        # The last restored device goes on: it opens a new epoch and the agent reads it.
        sent = await restored.send_text(world.conversation, "after restore")
        assert sent.cursor is not None
        assert sent.epoch > 0
        await world.agent.client.sync()
        assert texts(await world.agent.client.history(world.conversation, None, 10))[-1] == "after restore"

    run(scenario())


def test_reopen_with_the_same_key_and_refuse_another(world):
    async def scenario():
        visitor = world.visitor
        await visitor.client.send_text(world.conversation, "persisted")
        reopened = await sotto.open_client(visitor.path, visitor.key)
        assert reopened.device_id() == visitor.client.device_id()
        assert texts(await reopened.history(world.conversation, None, 10)) == ["persisted"]
        with pytest.raises(sotto.SottoError.Store) as error:
            await sotto.open_client(visitor.path, sotto.new_store_key())
        assert error.value.code == "store_wrong_key"

    run(scenario())


def test_typed_errors_for_bad_input(world, devices, relay):
    async def expect(kind, code, coroutine):
        with pytest.raises(kind) as error:
            await coroutine
        assert error.value.code == code, error.value
        assert isinstance(error.value, sotto.SottoError)

    async def scenario():
        agent, visitor = world.agent.client, world.visitor.client
        await expect(sotto.SottoError.InvalidInput, "invalid_input", agent.send_text("not-hex", "x"))
        await expect(sotto.SottoError.InvalidInput, "invalid_input", agent.history("ab" * 15, None, 1))
        await expect(sotto.SottoError.InvalidInput, "invalid_input", visitor.open_conversation("nonsense"))
        await expect(sotto.SottoError.InvalidInput, "invalid_input",
                     agent.members("zz" * 16))
        await expect(sotto.SottoError.State, "unknown_conversation", agent.send_text("00" * 16, "x"))
        await expect(sotto.SottoError.State, "unknown_team", agent.members("00" * 16))
        await expect(sotto.SottoError.State, "not_permitted", visitor.create_team(None))
        await expect(sotto.SottoError.InvalidInput, "invalid_input",
                     sotto.open_client(devices.path(), b"\x00" * 31))
        await expect(sotto.SottoError.State, "not_registered",
                     sotto.open_client(devices.path(), sotto.new_store_key()))
        await expect(sotto.SottoError.State, "already_registered",
                     sotto.register_client(world.visitor.path, world.visitor.key, relay.url,
                                           relay.widget_id, sotto.ClientKind.VISITOR, None))
        await expect(sotto.SottoError.InvalidInput, "url_insecure_scheme",
                     sotto.register_client(devices.path(), sotto.new_store_key(), "http://relay.example.com",
                                           relay.widget_id, sotto.ClientKind.VISITOR, None))
        await expect(sotto.SottoError.InvalidInput, "invalid_input",
                     sotto.register_client(devices.path(), sotto.new_store_key(), relay.url,
                                           "not-a-widget", sotto.ClientKind.VISITOR, None))
        await expect(sotto.SottoError.Relay, "relay_bootstrap_invalid",
                     sotto.register_client(devices.path(), sotto.new_store_key(), relay.url,
                                           relay.widget_id, sotto.ClientKind.MEMBER, "00" * 32))
        await expect(sotto.SottoError.Protocol, "recovery_word_count",
                     visitor.export_backup(sotto.BackupSecret.RECOVERY_WORDS(words="too few words")))
        await expect(sotto.SottoError.Backup, "backup_kdf_params",
                     visitor.export_backup(sotto.BackupSecret.PASSPHRASE(
                         passphrase="p", kdf=sotto.KdfSettings(memory_kib=1, iterations=1, parallelism=1))))
        await expect(sotto.SottoError.Protocol, "decode_truncated",
                     sotto.restore_client(devices.path(), sotto.new_store_key(), b"\x01",
                                          sotto.BackupSecret.PASSPHRASE(passphrase="p", kdf=None)))
        # The visitor is no member: the core refuses to sign a link for it.
        await expect(sotto.SottoError.Protocol, "chain_unknown_author",
                     visitor.invite_member(world.team.team_id, agent.device_id(), sotto.TeamRole.AGENT))

    run(scenario())


def test_typing_and_receipts_reach_the_other_side(world):
    async def scenario():
        agent, visitor = world.agent.client, world.visitor.client
        await visitor.send_text(world.conversation, "ping")
        await agent.sync()
        agent_events = agent.subscribe()
        agent.start()
        try:
            await next_matching(agent_events, lambda e: isinstance(e, sotto.Event.CONNECTED))
            await visitor.send_typing(world.conversation, True)
            event = await next_matching(agent_events, lambda e: isinstance(e, sotto.Event.TYPING))
            assert (event.sender, event.typing) == (visitor.device_id(), True)
            [message] = await visitor.history(world.conversation, None, 1)
            await visitor.send_read_receipt(world.conversation, message.cursor)
            event = await next_matching(agent_events, lambda e: isinstance(e, sotto.Event.RECEIPT))
            assert event.read_up_to == message.cursor
        finally:
            agent.stop()

    run(scenario())


def test_policy_and_team_listing(world):
    async def scenario():
        owner = world.owner.client
        assert world.team in await owner.teams()
        policy = sotto.default_policy()
        assert policy.retain_history
        policy.epoch_max_messages = 50
        await owner.set_policy(world.team.team_id, policy)
        await owner.change_role(world.team.team_id, world.agent_member, sotto.TeamRole.ADMIN)
        members = {m.member_id: m for m in await owner.members(world.team.team_id)}
        assert members[world.agent_member].role == sotto.TeamRole.ADMIN
        assert members[world.agent_member].devices == [world.agent.client.device_id()]
        await world.agent.client.sync_team(world.team.team_id)
        membership = await world.agent.client.membership(world.team.team_id)
        assert membership.role == sotto.TeamRole.ADMIN

    run(scenario())
