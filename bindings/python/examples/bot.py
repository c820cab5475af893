"""A small bot that answers visitors.

    python examples/bot.py --relay https://relay.example.com --widget <widget id> \\
        --team <team_id:fingerprint> --data ./bot-data

The first run registers a member device and prints its id: an owner or admin adds it to the
team with the Bot role (`invite_member(team_id, device_id, TeamRole.BOT)`), then the bot joins
and answers every text a visitor sends. Later runs open the same device.

The store key lives in a file here to keep the example short; a real deployment keeps it in a
secret manager."""

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import sotto  # noqa: E402


def answer(text: str) -> str:
    """The bot's whole intelligence."""
    if "hours" in text.lower():
        return "We are open 9:00 to 17:00, Monday to Friday."
    return f"Thanks for your message ({text!r}); an agent will be with you shortly."


async def open_or_register(data_dir: str, relay: str, widget: str) -> "sotto.SottoClient":
    os.makedirs(data_dir, exist_ok=True)
    database, key_file = os.path.join(data_dir, "bot.sqlite"), os.path.join(data_dir, "store.key")
    if os.path.exists(key_file):
        with open(key_file, "rb") as f:
            return await sotto.open_client(database, f.read())
    key = sotto.new_store_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    client = await sotto.register_client(database, key, relay, widget, sotto.ClientKind.MEMBER, None)
    print(f"registered; add this device to the team as a bot: {client.device_id()}")
    return client


async def join_when_invited(client: "sotto.SottoClient", team: str, wait_secs: float = 600) -> None:
    """Joins the team once an admin has added this device."""
    for _ in range(int(wait_secs)):
        try:
            await client.join_team(team)
            return
        except sotto.SottoError as e:
            if e.code not in ("relay_forbidden", "chain_unknown_author", "not_permitted"):
                raise
        await asyncio.sleep(1)
    raise TimeoutError("this device was not added to the team in time")


async def serve(client: "sotto.SottoClient", replies: int = 0) -> None:
    """Answers visitors' texts; stops after `replies` answers if it is not 0."""
    events = client.subscribe()
    client.start()
    sent = 0
    try:
        while replies == 0 or sent < replies:
            event = await events.next(60_000)
            if not isinstance(event, sotto.Event.MESSAGE) or event.message.mine:
                continue
            if isinstance(event.message.body, sotto.MessageBody.TEXT):
                await client.send_text(event.conversation_id, answer(event.message.body.text))
                sent += 1
    finally:
        client.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relay", required=True)
    parser.add_argument("--widget", required=True)
    parser.add_argument("--team", required=True, help="team_id:fingerprint")
    parser.add_argument("--data", default="bot-data")
    args = parser.parse_args()
    client = await open_or_register(args.data, args.relay, args.widget)
    await join_when_invited(client, args.team)
    print("answering visitors; Ctrl-C to stop")
    await serve(client)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
