"""Which notice waves a reschedule moves, splits or leaves alone (pure).

``reschedule --notice LISTS@WHEN`` moves the named lists, never anyone else:

- a wave still to go whose lists are all named in one ``--notice`` moves whole,
  keeping its number;
- naming some of a wave's lists splits them off into a new wave at the new
  time; the rest of the wave keeps its time;
- a wave not named keeps its time, and is refused by name if that is no longer
  before the new lift;
- a list in no wave still to go is refused: one not in the pack, because a
  change of time must not quietly change who gets the material (the lists were
  checked and cleared when the pack was queued), and one whose wave has started,
  because those partners already have, or are getting, the notice.

So no list ever leaves a pack, and the pack's lists never change here.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from embargo_bot.domain.packs import MovedWave, Stage, StageState
from embargo_bot.domain.times import describe
from embargo_bot.officials.intake import WavePlan


@dataclass(frozen=True)
class WaveChanges:
    moved: tuple[MovedWave, ...]  # waves still to go given a new time or fewer lists
    split_off: tuple[WavePlan, ...]  # lists taken out of a wave, as new waves


def plan_wave_changes(
    notice_stages: Sequence[Stage],
    still_to_go: set[int],
    requested: Sequence[WavePlan],
    *,
    lift_at: datetime | None,
    zone: ZoneInfo,
    problems: list[str],
) -> WaveChanges:
    """Apply ``requested`` to the waves; every reason it cannot be done goes in ``problems``.

    ``still_to_go`` holds the ids of the waves not yet started: only those can move.
    """
    target: dict[str, int] = {}
    for index, plan in enumerate(requested):
        for key in plan.list_keys:
            if key in target:
                problems.append(f"{plan.option}: {key} is named twice; name each list once")
            else:
                target[key] = index
    open_waves = [s for s in notice_stages if s.id in still_to_go]
    _refuse_lists_not_to_go(notice_stages, open_waves, target, requested, problems)

    moved: list[MovedWave] = []
    split_off: dict[int, list[str]] = {}
    for wave in open_waves:
        named = [key for key in wave.list_keys if key in target]
        rest = tuple(key for key in wave.list_keys if key not in target)
        groups: dict[int, list[str]] = {}
        for key in named:
            groups.setdefault(target[key], []).append(key)
        if not groups:
            _check_kept(wave, wave.list_keys, lift_at, zone, problems)
            continue
        if rest:
            moved.append(MovedWave(wave.id, wave.due_at, rest))
            _check_kept(wave, rest, lift_at, zone, problems)
        else:
            first = min(groups)
            moved.append(MovedWave(wave.id, requested[first].at, tuple(groups.pop(first))))
        for index, keys in groups.items():
            split_off.setdefault(index, []).extend(keys)
    return WaveChanges(
        moved=tuple(moved),
        split_off=tuple(
            WavePlan(tuple(dict.fromkeys(keys)), requested[index].at, requested[index].option)
            for index, keys in sorted(split_off.items())
        ),
    )


def _refuse_lists_not_to_go(
    notice_stages: Sequence[Stage],
    open_waves: Sequence[Stage],
    target: dict[str, int],
    requested: Sequence[WavePlan],
    problems: list[str],
) -> None:
    open_keys = {key for wave in open_waves for key in wave.list_keys}
    in_pack = list(
        dict.fromkeys(
            key
            for stage in notice_stages
            if stage.state is not StageState.CANCELLED
            for key in stage.list_keys
        )
    )
    for key, index in target.items():
        if key in open_keys:
            continue
        option = requested[index].option
        if key in in_pack:
            problems.append(
                f"{option}: {key}'s notice wave has already started, so it cannot be moved"
            )
            continue
        near = difflib.get_close_matches(key, in_pack, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        problems.append(
            f"{option}: {key} is not one of this pack's lists ({', '.join(in_pack)}); "
            f"reschedule moves the pack's waves and never adds a list{hint}"
        )


def _check_kept(
    wave: Stage,
    keys: tuple[str, ...],
    lift_at: datetime | None,
    zone: ZoneInfo,
    problems: list[str],
) -> None:
    if lift_at is None or wave.due_at < lift_at:
        return
    names = ", ".join(keys)
    problems.append(
        f"notice wave {wave.wave} ({names}) keeps its time ({describe(wave.due_at, zone)}), "
        f"but must go before the lift ({describe(lift_at, zone)}); move it too with "
        f"--notice {','.join(keys)}@WHEN"
    )
