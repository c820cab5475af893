"""The example bot (examples/bot.py) registers, waits to be added to the team, and answers a
visitor over the relay."""

import asyncio
import importlib.util
import os

import sotto
from conftest import texts

_spec = importlib.util.spec_from_file_location(
    "bot_example", os.path.join(os.path.dirname(__file__), "..", "examples", "bot.py"))
bot_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bot_example)


def test_bot_answers_a_visitor(world, relay, tmp_path):
    async def scenario():
        data = str(tmp_path / "bot")
        bot = await bot_example.open_or_register(data, relay.url, relay.widget_id)
        # Not added yet: joining waits (and gives up when told to).
        try:
            await bot_example.join_when_invited(bot, world.team.reference, wait_secs=1)
            raise AssertionError("joined before being added")
        except TimeoutError:
            pass
        await world.owner.client.invite_member(world.team.team_id, bot.device_id(), sotto.TeamRole.BOT)
        await bot_example.join_when_invited(bot, world.team.reference, wait_secs=10)

        serving = asyncio.create_task(bot_example.serve(bot, replies=1))
        await world.visitor.client.send_text(world.conversation, "What are your hours?")
        await asyncio.wait_for(serving, timeout=20)

        await world.visitor.client.sync()
        assert texts(await world.visitor.client.history(world.conversation, None, 10)) == [
            "What are your hours?", "We are open 9:00 to 17:00, Monday to Friday."]
        # A second run opens the same device from its data directory.
        again = await bot_example.open_or_register(data, relay.url, relay.widget_id)
        assert again.device_id() == bot.device_id()

    asyncio.run(scenario())
