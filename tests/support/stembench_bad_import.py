"""A model module whose import fails, as a user's broken plug-in would."""

raise RuntimeError("this module is broken on purpose")
