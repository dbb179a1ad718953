"""Checks on the release and social post as written, before anything is rendered.

The rendered emails are checked again at render time (``messages.rendering``);
checking the source too names the file an official has to fix.
"""

from __future__ import annotations

from pathlib import Path

from embargo_bot.messages.links import find_live_link
from embargo_bot.messages.release_checks import release_problems


def check_material(
    *,
    url: str | None,
    release: str | None,
    release_path: Path | None,
    social: str | None,
    social_path: Path | None,
    problems: list[str],
    warnings: list[str],
) -> None:
    """Images, plain-http links and the live link itself, in the texts partners get early."""
    if release is not None and release_path is not None:
        found, cautions = release_problems(release, release_path)
        problems.extend(found)
        warnings.extend(cautions)
    if url is None:
        return
    for option, text, path in (
        ("--release", release, release_path),
        ("--social", social, social_path),
    ):
        if text is None or path is None:
            continue
        leaked = find_live_link(text, url)
        if leaked is not None:
            problems.append(
                f"{option} {path}: contains the live link ({leaked}): it must not reach partners "
                "before the lift. Remove it, or write [its text](#) where the link goes; the "
                "live email sends the link at the lift"
            )
