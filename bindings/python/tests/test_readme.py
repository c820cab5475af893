"""The Python example of bindings/README.md runs: a new visitor asks the team a question and
gets the agent's answer."""

import asyncio
import os
import re

import sotto
from conftest import next_matching

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_example(language: str) -> str:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"<!-- readme-example: {language} -->\n```{language}\n(.*?)\n```", text, re.S)
    assert match, f"bindings/README.md has no {language} example"
    return match.group(1)


def test_readme_python_example_runs(world, devices, relay):
    namespace = {}
    exec(compile(readme_example("python"), "README.md (python example)", "exec"), namespace)
    ask_support = namespace["ask_support"]

    async def scenario():
        agent = world.agent.client
        events = agent.subscribe()
        agent.start()
        try:
            await next_matching(events, lambda e: isinstance(e, sotto.Event.CONNECTED))

            async def answer_the_first_visitor():
                event = await next_matching(
                    events, lambda e: isinstance(e, sotto.Event.MESSAGE) and not e.message.mine)
                assert event.message.body.text == "Hello! Where is my order?"
                await agent.send_text(event.conversation_id, "It ships today.")

            answering = asyncio.create_task(answer_the_first_visitor())
            answer = await asyncio.wait_for(
                ask_support(devices.path(), sotto.new_store_key(), relay.url, relay.widget_id,
                            world.team.reference),
                timeout=30)
            await answering
            assert answer == "It ships today."
        finally:
            agent.stop()

    asyncio.run(scenario())
