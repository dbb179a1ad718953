"""Recipient lists: parsing each YAML file, the folder as a whole, and who gets a stage.

``parse`` is pure (``file:line`` problems); ``catalogue`` reads the folder and
chooses lists for a pack; ``audience`` decides each stage's recipients.
May import ``security`` (partners' S/MIME certificates) and ``domain``.
"""
