"""The one exception the lab raises for conditions a user can fix."""


class LabError(Exception):
    """A failure worth one clear line to the user, never a traceback."""
