"""Sending: the scheduler, running each stage, SMTP, retries and pacing.

``scheduler`` keeps APScheduler's timetable in step with the store;
``stage_runner`` decides, claims and prepares a stage; ``stage_session`` sends
it over reused ``smtp`` connections, recording each outcome as it comes.
May import ``messages``, ``lists``, ``store``, ``security`` and ``domain``.
"""
