"""In-process stand-ins for what the real registry cannot be made to do: faults, hostile answers.

They are used in addition to the real registry, never instead of it.
"""
