"""The emails themselves: templates rendered, MIME built once per stage.

``builder`` turns a pack and a stage into one shared message; ``rendering``
(Jinja2 and Markdown), ``mime`` (bytes, a few headers per recipient) and
``calendar`` (the iCalendar lift event) are its parts.
May import ``store``, ``security`` and ``domain``.
"""
