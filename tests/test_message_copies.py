"""Each recipient's copy of a stage's message: the same bytes, one copy of the shared part held."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from embargo_bot.devtools.samplepdf import sample_pdf
from embargo_bot.domain.classification import Classification
from embargo_bot.domain.packs import Pack, PackState, StageKind
from embargo_bot.messages.mime import (
    MessageCopies,
    Sender,
    StageMessage,
    build_stage_message,
    personalise,
)
from embargo_bot.messages.rendering import RenderedEmail

SENDER = Sender(display_name="Scottish Government Comms", address="embargo-bot@gov.example")
PACK = Pack(
    id="serious-organised-crime-7k2q",
    title="Serious Organised Crime Strategy",
    reference=None,
    url="https://www.gov.scot/isbn/9781802019445",
    classification=Classification.OFFICIAL_SENSITIVE,
    contact="press@gov.example",
    lift_at=datetime(2022, 2, 23, 11, 0, tzinfo=UTC),
    list_keys=("nca",),
    pdf_name="soc-strategy.pdf",
    state=PackState.ACTIVE,
    created_at=datetime(2022, 2, 20, 9, 0, tzinfo=UTC),
    created_by="official",
)
RENDERED = RenderedEmail(subject="EMBARGOED: strategy", text="Text.\n", html="<p>Text.</p>\n")
DATE = datetime(2022, 2, 22, 9, 0, tzinfo=UTC)

# Recipients whose own lines differ in length: with a name, without, and a list's group.
ADDRESSEES = [
    {"to_address": "duty.officer@nca.example", "to_name": "Duty Officer", "to_group": None},
    {"to_address": "press@copfs.example", "to_name": None, "to_group": None},
    {"to_address": "a@nca.example", "to_name": None, "to_group": "National Crime Agency"},
    {"to_address": "someone.with.a.long.name@nca.example", "to_name": "Ö " * 40, "to_group": None},
]


def stage_message(pdf: bytes) -> StageMessage:
    return build_stage_message(
        PACK, StageKind.NOTICE, RENDERED, sender=SENDER, boundary_seed="copies", pdf=pdf
    )


def test_every_copy_is_the_message_personalise_makes() -> None:
    stage = stage_message(sample_pdf(["Strategy"]))
    copies = MessageCopies(stage)
    assert copies.size == len(stage.common_headers) + len(stage.body)
    for round_ in range(2):
        for number, addressee in enumerate(ADDRESSEES):
            message_id = f"<{round_}.{number}.notice@gov.example>"
            date = DATE + timedelta(seconds=number)
            expected = personalise(stage, message_id=message_id, date=date, **addressee)
            assert copies.personalise(message_id=message_id, date=date, **addressee) == expected
            assert copies.message() == stage


def test_the_stage_message_is_there_before_any_copy() -> None:
    stage = stage_message(b"%PDF-1.4 small")
    assert MessageCopies(stage).message() == stage


@pytest.mark.parametrize("held", [1, 3])
def test_one_copy_of_the_shared_part_is_held_while_each_is_sent(held: int) -> None:
    """A copy being sent and the stage's message are not two copies of a large attachment."""
    tracemalloc.start()
    try:
        stage = stage_message(b"%PDF-1.4\n" + b"0" * 6_000_000)
        size = len(stage.body)
        copies = MessageCopies(stage)
        del stage
        in_flight: list[bytes] = []
        for number in range(6):
            in_flight.append(
                copies.personalise(
                    to_address=f"partner{number}@nca.example",
                    to_name=None,
                    message_id=f"<{number}.notice@gov.example>",
                    date=DATE,
                )
            )
            del in_flight[:-held]  # the relay has taken the older ones
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
            # The copies in flight, and nothing besides: the last of them is the one kept.
            assert current < (held + 0.2) * size
    finally:
        tracemalloc.stop()
